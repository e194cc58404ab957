"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, on every route.

OpenAI's clients read `error.message` and the status code (the openai SDK raises
`BadRequestError` for 400, `AuthenticationError` for 401, `NotFoundError` for 404,
`ConflictError` for 409, `RateLimitError` for 429, `InternalServerError` for 5xx), so the runs
API answers errors the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from ..errors import OrchestratorError, RunBusyError, StorageError, UsageError

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """An error response: status, one-line message, OpenAI's type/param/code, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.type, self.param, self.code = type, param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


def from_orchestrator(exc: OrchestratorError) -> ApiError:
    """The status a failure of the SDK maps to; its message is safe to show (never a key)."""
    if isinstance(exc, RunBusyError):
        return ApiError(409, exc.message, code="run_busy")
    if isinstance(exc, StorageError):
        return ApiError(500, exc.message, type=SERVER_ERROR, code="storage_error")
    if isinstance(exc, UsageError):
        return ApiError(400, exc.message, code="invalid_request")
    if exc.exit_code == 2:  # a model endpoint or a workflow that cannot serve: upstream
        return ApiError(502, exc.message, type=SERVER_ERROR, code=exc.type)
    return ApiError(500, exc.message, type=SERVER_ERROR, code=exc.type)


def not_found(what: str, param: str | None = None, code: str = "not_found") -> ApiError:
    return ApiError(404, what, param=param, code=code)
