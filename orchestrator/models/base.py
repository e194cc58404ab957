"""The model layer's small vocabulary: messages, token usage, request parameters, responses, call
records, and the `ChatModel` ABC with its one abstract method.

Everything here is a frozen dataclass: values that cross from the wire mapping (openai.py) into
the graph. An application or a test implements `ChatModel` to plug in any backend (see
`orchestrator.testing` for ready-made ones); wrappers (`WrapperModel`) add fallback, budgets and
the ledger around any model the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

MessageRole = Literal["instruction", "user", "assistant"]
CallPurpose = Literal["plan", "solve", "synthesize", "node", "route"]
"""Why a call was made: planning, solving a subproblem, writing the answer, a graph node, or
routing (a learned router's embedding of a step's text)."""


@dataclass(frozen=True)
class Message:
    """One chat message. `instruction` is sent as `system` or `developer`, per the profile."""

    role: MessageRole
    content: str


@dataclass(frozen=True)
class TokenUsage:
    """Tokens as billed. `input_tokens` includes cached ones; `output_tokens` includes reasoning.

    `estimated` is true when the endpoint reported no usage and the counts were estimated from
    the text (about four characters per token).
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.estimated or other.estimated,
        )


@dataclass(frozen=True)
class CallRecord:
    """One billed model call: which profile made it, for which step, what it cost.

    Calls the endpoint billed but the run could not use (a reasoning model cut off at its token
    cap, an answer that never validated) are records too.
    """

    profile: str
    model: str
    purpose: CallPurpose
    step: str | None
    """The subproblem id or graph node the call was made for; None for plan and synthesize."""
    usage: TokenUsage
    cost_usd: float
    """What the call cost; for estimated usage, the call's worst case (so budgets stay binding)."""
    latency_s: float
    finish_reason: str | None = None
    started_at: float = 0.0
    """Wall-clock time (`time.time()`) the successful attempt was sent."""
    cached: bool = False
    """Answered from the response cache: `cost_usd` is 0, while `usage` and `latency_s` are
    the original call's (so an evaluation can still charge it at its full price)."""


@dataclass(frozen=True)
class ResponseFormat:
    """A JSON Schema the answer must follow (sent as `response_format` json_schema)."""

    name: str
    schema: dict[str, Any]
    strict: bool = True


@dataclass(frozen=True)
class RequestParams:
    """Everything about one request besides its messages.

    `on_token` receives the visible answer as it streams (never the reasoning trace); when a
    retried stream cannot continue what was already shown, `on_restart` is called first and
    the answer is streamed again from its beginning.
    """

    purpose: CallPurpose = "solve"
    step: str | None = None
    response_format: ResponseFormat | None = None
    max_output_tokens: int | None = None
    """The output token cap to send; None sends none (wrappers fill in the profile's cap)."""
    on_token: Callable[[str], None] | None = None
    on_restart: Callable[[], None] | None = None
    temperature: float | None = None
    """Overrides the profile's temperature (generative profiles only; drawing samples)."""
    reasoning_effort: str | None = None
    """Overrides the profile's reasoning_effort (reasoning profiles only; effort ladders)."""
    sample: int = 0
    """Which of several samples of the same request this is (0: not a sample). Samples that
    must differ are told apart by it: sent as `seed`, and part of the response cache's key."""


@dataclass(frozen=True)
class ModelResponse:
    """One finished call: the visible answer, the reasoning trace kept apart, token usage.

    `latency_s` and `started_at` describe the attempt that succeeded; a model that leaves them
    None is timed by the ledger. `cached` marks an answer replayed from the response cache.
    `call` is the ledger's record of this response, once recorded.
    """

    content: str
    trace: str | None = None
    finish_reason: str | None = "stop"
    usage: TokenUsage = field(default_factory=TokenUsage)
    latency_s: float | None = None
    started_at: float | None = None
    cached: bool = False
    call: CallRecord | None = None


class ChatModel(abc.ABC):
    """A model, ready to call: implement `request`.

    A model reports each call's `usage`; pricing, budgets, retries of cut-off answers and
    fallback are done by the wrappers `Workflow` puts around it, which carry the `profile` name
    and the profile's `model` id.
    """

    profile: str = ""
    model: str = ""

    @abc.abstractmethod
    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        """Send one chat request; stream the visible answer to `params.on_token` if given."""
