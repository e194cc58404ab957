"""The model layer's small vocabulary: messages, token usage, responses, and the ChatModel ABC.

Everything here is a frozen dataclass: values that cross from the wire mapping (openai.py) into
the graph. A test or an application can implement `ChatModel` to plug in any backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["instruction", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message. `instruction` is sent as `system` or `developer`, per the profile."""

    role: Role
    content: str


@dataclass(frozen=True)
class TokenUsage:
    """Tokens as billed. `input_tokens` includes cached ones; `output_tokens` includes reasoning."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class CallRecord:
    """One billed model call: who made it, for what, what it cost.

    Calls that failed after the endpoint billed them (cut off at the token cap) are records too.
    """

    profile: str
    model: str
    purpose: str  # "plan", "solve:<id>", "synthesize"
    usage: TokenUsage
    cost_usd: float
    latency_s: float
    finish_reason: str | None = None


@dataclass(frozen=True)
class ModelResponse:
    """A finished call: the visible answer, the reasoning trace kept apart, and every billed call.

    `calls` holds more than one record when the call was repeated after a billed failure.
    """

    content: str
    trace: str | None
    finish_reason: str | None
    calls: tuple[CallRecord, ...] = field(default=())

    @property
    def usage(self) -> TokenUsage:
        total = TokenUsage()
        for call in self.calls:
            total = total + call.usage
        return total

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)


@dataclass(frozen=True)
class ResponseFormat:
    """A JSON Schema the answer must follow (sent as `response_format` json_schema)."""

    name: str
    schema: dict[str, Any]
    strict: bool = True


class ChatModel(abc.ABC):
    """One model profile, ready to call. Implementations own retries and usage accounting."""

    profile: str
    model: str

    @abc.abstractmethod
    async def request(
        self,
        messages: list[Message],
        *,
        purpose: str,
        response_format: ResponseFormat | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        """Send one chat request; stream visible tokens to `on_token` when it is given."""
