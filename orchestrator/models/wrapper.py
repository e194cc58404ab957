"""`WrapperModel`: a model that wraps another and, by default, changes nothing.

Fallback, budgets, the token cap and the ledger are each a small wrapper over this base, and so
will policies be: each overrides `request`, does its one job, and delegates to `wrapped`.
"""

from __future__ import annotations

from .base import ChatModel, Message, ModelResponse, RequestParams


class WrapperModel(ChatModel):
    """Delegates every request to `wrapped`; `profile` and `model` are the wrapped model's."""

    def __init__(self, wrapped: ChatModel) -> None:
        self.wrapped = wrapped
        self.profile = wrapped.profile
        self.model = wrapped.model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.wrapped!r})"

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        return await self.wrapped.request(messages, params)
