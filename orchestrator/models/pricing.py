"""Cost of a call from its token usage and a profile's prices (USD per 1M tokens)."""

from __future__ import annotations

from ..spec import Price
from .base import TokenUsage


def cost_usd(usage: TokenUsage, price: Price) -> float:
    """((input − cached)·input + cached·cached_input + output·output) / 1e6, as DESIGN.md states."""
    cached_price = price.input if price.cached_input is None else price.cached_input
    uncached = max(usage.input_tokens - usage.cached_input_tokens, 0)
    return (
        uncached * price.input
        + usage.cached_input_tokens * cached_price
        + usage.output_tokens * price.output
    ) / 1e6


def worst_case_usd(input_tokens: int, max_output_tokens: int, price: Price) -> float:
    """The most a call can cost: every input token uncached, the whole output cap spent."""
    return (input_tokens * price.input + max_output_tokens * price.output) / 1e6
