"""A profile's `fallback`: another profile used once the first has exhausted its retries."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ModelError
from .base import ChatModel, Message, ModelResponse, ResponseFormat


class FallbackModel(ChatModel):
    """Calls `primary`; when it fails for good (a `ModelError`), calls `fallback` once.

    Configuration errors (bad key, unknown model) are not hidden behind the fallback: they
    surface so the user can fix them. Billed calls of the failed primary are kept.
    """

    def __init__(self, primary: ChatModel, fallback: ChatModel) -> None:
        self.primary = primary
        self.fallback = fallback
        self.profile = primary.profile
        self.model = primary.model

    async def request(
        self,
        messages: list[Message],
        *,
        purpose: str,
        response_format: ResponseFormat | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        try:
            return await self.primary.request(
                messages, purpose=purpose, response_format=response_format, on_token=on_token
            )
        except ModelError as exc:
            billed = exc.calls
        response = await self.fallback.request(
            messages, purpose=purpose, response_format=response_format, on_token=on_token
        )
        return ModelResponse(
            response.content, response.trace, response.finish_reason, (*billed, *response.calls)
        )
