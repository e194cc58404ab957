"""Request plumbing shared by the routes: JSON bodies checked by pydantic, and noticing that a
client went away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

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
