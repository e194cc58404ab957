"""A profile's `fallback`: another profile used once the first has failed for good."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ModelError
from .base import ChatModel, Message, ModelResponse, RequestParams
from .wrapper import WrapperModel


class FallbackModel(WrapperModel):
    """Calls the wrapped (primary) model; when it fails for good (a `ModelError`: retries
    exhausted, cut off, unusable answer), calls `fallback` once with the same request.

    Configuration errors (bad key, unknown model) are not hidden behind the fallback: they
    surface so the user can fix them. What the primary was billed is already in the ledger.
    """

    def __init__(self, primary: ChatModel, fallback: ChatModel) -> None:
        super().__init__(primary)
        self.fallback = fallback

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        shown = False
        sink = params.on_token

        def watch(text: str) -> None:
            nonlocal shown
            shown = True
            if sink is not None:
                sink(text)

        try:
            watched = replace(params, on_token=watch) if sink is not None else params
            return await self.wrapped.request(messages, watched)
        except ModelError:
            pass
        if shown and params.on_restart is not None:
            params.on_restart()  # the primary streamed part of an answer that will not finish
        return await self.fallback.request(messages, params)
