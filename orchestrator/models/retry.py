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
import math
import ssl
import time

import anyio
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

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


def retrying(retries: int) -> AsyncRetrying:
    """The loop for one logical call: `retries` more attempts after the first, if transient.

    The last failure is re-raised as it is (`reraise`), for the caller to turn into a message.
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(retries + 1),
        wait=Backoff(),
        reraise=True,
    )
