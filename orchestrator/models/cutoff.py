"""A profile's output token cap, and what happens when an answer is unusable as it came back.

A reasoning model that spends its whole cap thinking returns `finish_reason: length` and no
answer, and that call is billed. It is asked again with the cap doubled, up to the profile's
`max_output_tokens_ceiling` (default: four times the cap); then `TruncatedError`. An answer made
only of tool calls (orchestrator sends no tools) is a `ModelError`. Either way the billed calls
are already in the ledger, which sits below this wrapper.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ModelError, TruncatedError
from ..spec import ModelProfile
from .base import ChatModel, Message, ModelResponse, RequestParams
from .wrapper import WrapperModel

# A reasoning model's cap when the profile gives none: it must always be sent, since a
# reasoning model thinking without one can bill tens of thousands of tokens.
DEFAULT_REASONING_CAP = 16_000
CUTOFF_GROWTH_LIMIT = 4
# A generative profile's cap when a budget is set and the profile gives none: a call's worst
# case must be bounded for the budget to hold.
DEFAULT_BUDGETED_CAP = 4_096


def output_cap(profile: ModelProfile, budgeted: bool) -> int | None:
    """The cap a profile's calls are sent with (None: no cap is sent)."""
    if profile.max_output_tokens:
        return profile.max_output_tokens
    if profile.reasoning:
        return DEFAULT_REASONING_CAP
    return DEFAULT_BUDGETED_CAP if budgeted else None


class OutputCapModel(WrapperModel):
    """Sends the profile's cap; grows it for cut-off reasoning; refuses answers it cannot use."""

    def __init__(self, wrapped: ChatModel, profile: ModelProfile, *, budgeted: bool) -> None:
        super().__init__(wrapped)
        self.spec = profile
        self.cap = output_cap(profile, budgeted)
        self.ceiling = profile.max_output_tokens_ceiling or (self.cap or 0) * CUTOFF_GROWTH_LIMIT

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        cap = params.max_output_tokens or self.cap
        while True:
            response = await self.wrapped.request(messages, replace(params, max_output_tokens=cap))
            if response.content or response.finish_reason not in ("length", "tool_calls"):
                return response
            where = f"profile '{self.profile}' ({self.model})"
            if response.finish_reason == "tool_calls":
                raise ModelError(
                    f"{where} answered with a tool call instead of text (orchestrator sends no "
                    "tools): check that the endpoint serves this model as a chat model",
                    profile=self.profile,
                    model=self.model,
                )
            if not (self.spec.reasoning and cap):
                return response  # a generative model cut off at once: an empty answer
            if cap < self.ceiling:
                cap = min(cap * 2, self.ceiling)
                continue
            raise TruncatedError(
                f"{where} spent its whole token cap ({cap} tokens) thinking and gave no answer: "
                f"raise max_output_tokens in models.{self.profile} or lower reasoning_effort",
                profile=self.profile,
                model=self.model,
            )
