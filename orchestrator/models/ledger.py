"""The ledger: every billed call of a run, recorded the moment the endpoint answers.

`LedgerModel` sits directly around the model that talks to the endpoint, so every call that
was billed is recorded before any wrapper above it can decide the answer is unusable (cut off,
a tool call, an invalid structure) and raise. Nothing about billing travels on exceptions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ..spec import Price
from .base import CallRecord, ChatModel, Message, ModelResponse, RequestParams, TokenUsage
from .pricing import cost_usd, input_token_bound, worst_case_usd
from .retry import AttemptListener, FailedAttempt, reporting_attempts
from .wrapper import WrapperModel

log = logging.getLogger(__name__)

Listener = Callable[[CallRecord], Awaitable[None]]


@dataclass(frozen=True)
class Exchange:
    """What a billed chat call sent and got back, for traces only: never stored or priced."""

    messages: list[Message]
    response: ModelResponse


ExchangeListener = Callable[[CallRecord, Exchange | None], None]


class Ledger:
    """A run's billed calls in this process, and who hears about each (the run log, events).

    Failed attempts (never billed) are kept apart in `attempts`, and heard by `on_attempt`.
    """

    def __init__(
        self,
        *listeners: Listener,
        on_attempt: AttemptListener | None = None,
        on_exchange: ExchangeListener | None = None,
    ) -> None:
        self.calls: list[CallRecord] = []
        self.attempts: list[FailedAttempt] = []
        self._listeners = listeners
        self._on_attempt = on_attempt
        self._on_exchange = on_exchange

    async def add(self, call: CallRecord, exchange: Exchange | None = None) -> None:
        """Record a billed call; `exchange` (its messages and answer) goes to tracing only,
        heard in the caller's context (the node that made the call)."""
        self.calls.append(call)
        for listener in self._listeners:
            await listener(call)
        if self._on_exchange is not None:
            self._on_exchange(call, exchange)

    async def failed(self, attempt: FailedAttempt) -> None:
        """An attempt failed (and, if `attempt.wait_s` is set, another follows)."""
        self.attempts.append(attempt)
        if self._on_attempt is not None:
            await self._on_attempt(attempt)

    def mark(self) -> int:
        """A position to total from: `spent(step, since=mark)`."""
        return len(self.calls)

    def spent(self, step: str | None, since: int = 0) -> tuple[TokenUsage, float]:
        """Tokens and cost of `step`'s calls recorded after `since`."""
        usage, cost = TokenUsage(), 0.0
        for call in self.calls[since:]:
            if call.step == step:
                usage, cost = usage + call.usage, cost + call.cost_usd
        return usage, cost


class LedgerModel(WrapperModel):
    """Prices each response at the profile's rates and records it in the ledger.

    A response whose usage is estimated is charged its worst case (prompt at one token per
    byte, the whole output cap), so a server that reports no usage cannot slip past a budget.
    """

    def __init__(
        self, wrapped: ChatModel, ledger: Ledger, *, profile: str, model: str, price: Price
    ) -> None:
        super().__init__(wrapped)
        self.ledger = ledger
        self.profile = profile
        self.model = model  # the spec's id, whatever a plugged-in model calls itself
        self.price = price

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        started, clock = time.time(), time.monotonic()
        with reporting_attempts(self._failed):
            response = await self.wrapped.request(messages, params)
        latency = time.monotonic() - clock if response.latency_s is None else response.latency_s
        cost = 0.0 if response.cached else cost_usd(response.usage, self.price)
        if response.usage.estimated and params.max_output_tokens and not response.cached:
            bound = input_token_bound(messages, params.response_format)
            cost = max(cost, worst_case_usd(bound, params.max_output_tokens, self.price))
        record = CallRecord(
            profile=self.profile,
            model=self.model,
            purpose=params.purpose,
            step=params.step,
            usage=response.usage,
            cost_usd=cost,
            latency_s=latency,
            finish_reason=response.finish_reason,
            started_at=started if response.started_at is None else response.started_at,
            cached=response.cached,
        )
        log.debug(
            "call %s on %s (%s): %d in, %d out, $%.6f, %.2fs%s",
            params.step or params.purpose, self.profile, self.model, response.usage.input_tokens,
            response.usage.output_tokens, cost, latency, " (cached)" if response.cached else "",
        )  # fmt: skip
        await self.ledger.add(record, Exchange(messages, response))
        return replace(response, call=record)

    async def _failed(self, attempt: FailedAttempt) -> None:
        # Named as the ledger names the call, whatever the endpoint model calls itself.
        await self.ledger.failed(replace(attempt, profile=self.profile, model=self.model))
