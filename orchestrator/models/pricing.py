"""Cost of a call from its token usage and a profile's prices (USD per 1M tokens), and the most
a call could cost before it is made."""

from __future__ import annotations

import json

from ..spec import Price
from .base import Message, ResponseFormat, TokenUsage


def cost_usd(usage: TokenUsage, price: Price) -> float:
    """((input − cached)·input + cached·cached_input + output·output) / 1e6."""
    cached_price = price.input if price.cached_input is None else price.cached_input
    uncached = max(usage.input_tokens - usage.cached_input_tokens, 0)
    return (
        uncached * price.input
        + usage.cached_input_tokens * cached_price
        + usage.output_tokens * price.output
    ) / 1e6


def reprice(usage: TokenUsage, price: Price, *, reasoning: bool) -> float:
    """What `usage` would cost at `price`; a profile that does not reason would not have
    produced the reasoning tokens, so they are dropped for it."""
    if reasoning or not usage.reasoning_tokens:
        return cost_usd(usage, price)
    visible = max(usage.output_tokens - usage.reasoning_tokens, 0)
    return cost_usd(TokenUsage(usage.input_tokens, usage.cached_input_tokens, visible), price)


def input_token_bound(messages: list[Message], response_format: ResponseFormat | None) -> int:
    """An upper bound on the prompt's tokens: one per UTF-8 byte (no BPE token is shorter),
    plus a margin per message for the chat template."""
    schema = json.dumps(response_format.schema) if response_format else ""
    return sum(len(m.content.encode()) + 16 for m in messages) + len(schema.encode()) + 16


def worst_case_usd(input_tokens: int, max_output_tokens: int, price: Price) -> float:
    """The most a call can cost: every input token uncached, the whole output cap spent."""
    return (input_tokens * price.input + max_output_tokens * price.output) / 1e6
