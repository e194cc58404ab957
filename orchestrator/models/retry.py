"""When a failed attempt is worth another, and how long to wait first: the one retry policy.

The SDK runs with `max_retries=0`, so this tenacity loop is the only one: backoff, `Retry-After`
and the attempt count are decided here and nowhere else. Failures the SDK does not raise itself
(a 200 that is no completion, a stream cut short, a whole attempt over its time) are raised by
the client as `TransientError` subclasses so the same predicate covers them.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import anyio
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ..errors import redact
from .base import CallPurpose

log = logging.getLogger(__name__)

# 408 timeout, 409 conflict (OpenAI's "try again"), 429 rate limit; every 5xx too.
TRANSIENT_STATUS = frozenset({408, 409, 429})
# A server asking for longer than this is treated as asking for this: a run should fail with a
# message rather than sleep for an hour.
MAX_RETRY_AFTER_S = 120.0


class TransientError(Exception):
    """An attempt failed in a way another attempt may not: retried. `str()` says how."""


class BadResponse(TransientError):
    """A 200 whose body is not a usable chat completion (not JSON, no choices, ...)."""


class ServerReportedError(TransientError):
    """A 200 that carries an `error` object instead of a completion (or inside a stream).

    Proxies and gateways (LiteLLM, OpenRouter, vLLM mid-generation) report an upstream failure
    this way; it is as transient as the 5xx it stands for.
    """

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"the endpoint reported an error: {detail}")


class StreamCutOff(TransientError):
    """A stream that ended before its finish_reason and `[DONE]`: the answer is incomplete."""


class ConnectionLost(TransientError):
    """The connection broke (or a read timed out) while the response body was being read."""


class AttemptTimeout(TransientError):
    """The whole attempt, connection to last byte, took longer than the profile's timeout_s."""


def _http_errors(name: str) -> tuple[type[BaseException], ...]:
    """The HTTP layer's exception class `name`: httpx2's (openai 3.x), httpx's (older SDKs)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


# What breaks off a response body while it is read. `create()` wraps these in
# `openai.APIConnectionError`, but reading a raw response's body raises them unwrapped; the SDK's
# own list (`openai._httpx2.request_exceptions`) is private, so it is rebuilt here.
BODY_READ_ERRORS: tuple[type[BaseException], ...] = (
    ssl.SSLError,
    anyio.EndOfStream,
    *_http_errors("RequestError"),
)
_TIMEOUTS = _http_errors("TimeoutException")
_CONNECT_FAILURES: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,
    *_http_errors("ConnectError"),
)


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: a retryable status, a broken connection or a broken body."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError | TransientError)  # incl. APITimeoutError


def is_timeout(exc: BaseException) -> bool:
    """A failure that was a timeout: ours for the whole attempt, or the HTTP layer's."""
    if isinstance(exc, AttemptTimeout | openai.APITimeoutError):
        return True
    return isinstance(exc.__cause__, _TIMEOUTS)


def is_unreachable(exc: BaseException) -> bool:
    """No connection could be made at all (refused, no route, unknown host)."""
    if not isinstance(exc, openai.APIConnectionError) or isinstance(exc, openai.APITimeoutError):
        return False
    return isinstance(exc.__cause__, _CONNECT_FAILURES)


def retry_after_s(exc: object) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `Retry-After`), if it did."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            asked = float(ms) / 1000
        elif (seconds := headers.get("retry-after")) is not None:
            asked = _seconds_from(seconds)
        else:
            return None
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    if not math.isfinite(asked):
        return None
    return min(max(asked, 0.0), MAX_RETRY_AFTER_S)


def _seconds_from(value: str) -> float:
    """`Retry-After` is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    try:
        return float(value)
    except ValueError:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()


class Backoff:
    """Exponential backoff with jitter, unless the server said how long to wait."""

    def __init__(self) -> None:
        self._exp = wait_random_exponential(multiplier=0.25, max=20)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(exc)
        return asked if asked is not None else self._exp(state)


def retrying(retries: int, watch: AttemptWatch | None = None) -> AsyncRetrying:
    """The loop for one logical call: `retries` more attempts after the first, if transient.

    The last failure is re-raised as it is (`reraise`), for the caller to turn into a message.
    `watch` hears of each failed attempt that is retried, with the wait before the next.
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(retries + 1),
        wait=Backoff(),
        reraise=True,
        before_sleep=watch.before_sleep if watch is not None else None,
    )


RetryReason = Literal["status", "timeout", "connection", "malformed", "error"]
"""Why an attempt failed: an HTTP error `status`; a `timeout` (the HTTP layer's, or the whole
attempt over `timeout_s`); a `connection` that could not be made, was dropped, or a stream cut
short; a `malformed` 200 whose body is no completion; an `error` object inside a 200."""


@dataclass(frozen=True)
class FailedAttempt:
    """One attempt at a model call that failed: never billed, kept with why and how long it took.

    The field names and meanings are stable: `CallRetried` carries this record, and the run log,
    traces and `orchestrator show` read it.
    """

    profile: str
    """The profile whose endpoint failed."""
    model: str
    """The profile's model id."""
    purpose: CallPurpose
    """Why the call was made: plan, solve, synthesize, node."""
    step: str | None
    """The subproblem id or graph node the call was made for; None for plan and synthesize."""
    number: int
    """Which attempt this was, from 1."""
    attempts: int
    """The most attempts the call may make (the profile's `retries` + 1)."""
    reason: RetryReason
    """What went wrong, as a kind (see `RetryReason`)."""
    detail: str
    """The same in words, one line, never a secret (`HTTP 503: overloaded`)."""
    status: int | None
    """The HTTP status for `reason == "status"` (and 200 for `error`), else None."""
    started_at: float
    """Wall-clock time (`time.time()`) the attempt was sent."""
    duration_s: float
    """How long the attempt took until it failed."""
    wait_s: float | None
    """Seconds waited before the next attempt; None when none follows (the call failed)."""


AttemptListener = Callable[[FailedAttempt], Awaitable[None]]

# The endpoint model sits beneath the ledger, the cache and the budget wrappers; a context
# variable lets the ledger hear about the failed attempts of the call it is making without
# every wrapper (and every plugged-in model) passing a callback down.
_listener: ContextVar[AttemptListener | None] = ContextVar("orchestrator_attempts", default=None)


@contextlib.contextmanager
def reporting_attempts(listener: AttemptListener) -> Iterator[None]:
    """Within the block, failed attempts of model calls are reported to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def classify(exc: BaseException) -> tuple[RetryReason, int | None, str]:
    """An attempt's failure as a reason kind, its HTTP status, and a one-line detail."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        inner = body.get("error")
        error = inner if isinstance(inner, dict) else body
        message = error.get("message") if isinstance(error.get("message"), str) else exc.message
        return "status", exc.status_code, redact(f"HTTP {exc.status_code}: {message}")[:300]
    if is_timeout(exc):
        return "timeout", None, redact(str(exc) or "timed out")[:300]
    if isinstance(exc, ServerReportedError):
        return "error", 200, redact(str(exc))[:300]
    if isinstance(exc, BadResponse):
        return "malformed", None, redact(str(exc))[:300]
    what = str(exc) or type(exc).__name__
    if is_unreachable(exc):
        what = f"cannot connect ({type(exc.__cause__).__name__})"
    elif isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
        what = f"the connection was dropped ({type(exc.__cause__).__name__})"
    return "connection", None, redact(what)[:300]


class AttemptWatch:
    """Times each attempt of one call; reports failed ones (and logs a warning per retry)."""

    def __init__(
        self, profile: str, model: str, purpose: CallPurpose, step: str | None, attempts: int
    ) -> None:
        self.profile, self.model, self.purpose, self.step = profile, model, purpose, step
        self.attempts = attempts
        self.number = 0
        self._started, self._clock = 0.0, 0.0
        self._listener = _listener.get()

    def begin(self) -> None:
        self.number += 1
        self._started, self._clock = time.time(), time.monotonic()

    async def before_sleep(self, state: RetryCallState) -> None:
        """tenacity's hook: the attempt failed and another follows after `upcoming_sleep`."""
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            await self.failed(exc, wait_s=state.upcoming_sleep)

    async def failed(self, exc: BaseException, *, wait_s: float | None = None) -> None:
        reason, status, detail = classify(exc)
        attempt = FailedAttempt(
            self.profile, self.model, self.purpose, self.step, self.number, self.attempts,
            reason, detail, status, self._started, time.monotonic() - self._clock, wait_s,
        )  # fmt: skip
        where = f"{self.step or self.purpose} on {self.profile} ({self.model})"
        if wait_s is not None:
            log.warning(
                "attempt %d/%d of %s failed: %s; retrying in %.1fs",
                self.number, self.attempts, where, detail, wait_s,
            )  # fmt: skip
        else:
            log.info("attempt %d/%d of %s failed: %s", self.number, self.attempts, where, detail)
        if self._listener is not None:
            await self._listener(attempt)
