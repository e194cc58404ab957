"""The gate in front of every route: the bearer key, the body size limit, and the request timer.

A pure ASGI middleware (no per-request task or body copy): it checks the `Authorization`
header against the key in constant time (`hmac.compare_digest`), refuses a body longer than
the limit before reading it when `Content-Length` says so (and while reading it otherwise), and
times each response to its last byte for `/metrics`. Neither the key sent nor the key expected
ever appears in a response or a log line.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .metrics import Metrics

_RUN_PATH = re.compile(r"^/runs/[^/]+(/events|/resume)?$")
_FIXED = {"/v1/chat/completions", "/v1/models", "/runs", "/metrics", "/healthz"}


def route_label(path: str) -> str:
    """A bounded label for a path (a run id in a label would grow the metrics without end)."""
    if path in _FIXED:
        return path
    match = _RUN_PATH.match(path)
    if match:
        return "/runs/{id}" + (match.group(1) or "")
    return "other"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class Guard:
    """Key check, body limit and timing, in that order."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body: int, metrics: Metrics):
        self.app, self.max_body, self.metrics = app, max_body, metrics
        self._key = api_key.encode() if api_key is not None else None

    def _refusal(self, scope: Scope) -> ApiError | None:
        if self._key is not None and not self._authorized(scope):
            return ApiError(
                401,
                "a valid API key is required: send the header Authorization: Bearer KEY",
                type="invalid_request_error",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return self.too_large()
        return None

    def _authorized(self, scope: Scope) -> bool:
        given = _header(scope, b"authorization") or b""
        scheme, _, token = given.partition(b" ")
        # Compared even when the scheme is wrong, so the time taken says nothing about the key.
        same = hmac.compare_digest(token.strip(), self._key or b"")
        return same and scheme.lower() == b"bearer"

    def too_large(self) -> ApiError:
        return ApiError(
            413,
            f"the request body is larger than this server accepts ({self.max_body} bytes)",
            code="request_too_large",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]
        label, method = route_label(scope["path"]), scope["method"]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                seconds = time.perf_counter() - started
                timing = self.metrics.of(self.metrics.http_seconds, label, method, str(status[0]))
                timing.observe(seconds)

        refusal = self._refusal(scope)
        if refusal is not None:
            await _drain(receive, self.max_body)
            await refusal.response()(scope, receive, timed_send)
            return
        await self.app(scope, self._limited(receive), timed_send)

    def _limited(self, receive: Receive) -> Receive:
        seen = [0]

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise self.too_large()  # answered by the app's ApiError handler
            return message

        return limited


async def _drain(receive: Receive, limit: int) -> None:
    """Read (and drop) a refused request's body, up to `limit`, so the answer is not lost to a
    connection reset while the client is still sending."""
    seen = 0
    more: Any = True
    while more and seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        more = message.get("more_body", False)
