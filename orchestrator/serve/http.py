"""Request plumbing shared by the routes: JSON bodies checked by pydantic, and noticing that a
client went away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`; a 400 naming the first wrong field otherwise."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        raise ApiError(400, message, param=param, code="invalid_value") from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def watch_disconnect(request: Request, on_gone: Callable[[], None]) -> asyncio.Task[None]:
    """Call `on_gone` if the client disconnects before the response is complete.

    Once a request's body is read, the server's next message is the disconnect: at once if the
    client left, after the response otherwise. Cancel the task when the response is done.
    """

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                on_gone()
                return

    return asyncio.create_task(watch())


class ByteStream(Response):
    """A streamed response of ready-made byte chunks (server-sent events), sent as they come.

    Starlette's StreamingResponse also listens for the disconnect in a task group of its own;
    the chat route watches for it already (`watch_disconnect`), so this one only sends. A send
    that fails (the client is gone) ends the stream, and closing the chunks' generator runs its
    cleanup.
    """

    def __init__(
        self, chunks: AsyncGenerator[bytes, None], headers: dict[str, str] | None = None
    ) -> None:
        # Not Response.__init__: it would render an empty body and promise Content-Length: 0.
        self.status_code, self.media_type, self.background = 200, "text/event-stream", None
        self.init_headers(headers)
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away; the generator's cleanup stops what it was following
        finally:
            await self.chunks.aclose()
