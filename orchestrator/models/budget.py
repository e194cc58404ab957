"""`limits.budget_usd`: spending never exceeds the budget, even with calls in flight at once.

Before each call its worst case is reserved: the prompt at one token per UTF-8 byte plus the
whole output cap, at the profile's prices. A call whose worst case does not fit is not made.
After the call the reservation is replaced by what the ledger recorded for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BudgetExceededError
from ..spec import Price
from .base import ChatModel, Message, ModelResponse, RequestParams
from .pricing import input_token_bound, worst_case_usd
from .wrapper import WrapperModel


@dataclass
class Budget:
    """A run's spending so far and the worst cases of the calls in flight.

    One event loop, and no await between check and update: no lock is needed. `degraded` is set
    once reasoning no longer fits, so later subproblems go straight to the generative role.
    A run in a batch has the batch's budget as `parent`: every reservation must fit both.
    """

    limit_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    degraded: bool = False
    parent: Budget | None = None
    scope: str = "limits.budget_usd"
    """What to raise when the budget is too small (named in the error)."""
    refused: bool = False
    """A reservation did not fit (a batch starts no more tasks then)."""

    @property
    def limited(self) -> bool:
        return self.limit_usd is not None or (self.parent is not None and self.parent.limited)

    def reserve(self, worst_usd: float, what: str) -> None:
        if self.limit_usd is not None and (
            self.spent_usd + self.reserved_usd + worst_usd > self.limit_usd
        ):
            self.refused = True
            raise BudgetExceededError(
                f"{what} could cost up to ${worst_usd:.4f}, and ${self.spent_usd:.4f} is spent "
                f"(${self.reserved_usd:.4f} more in flight) of the ${self.limit_usd:.4f} budget: "
                f"raise {self.scope} or lower max_output_tokens"
            )
        if self.parent is not None:
            self.parent.reserve(worst_usd, what)  # raises before anything is held here
        if self.limit_usd is not None:
            self.reserved_usd += worst_usd

    def settle(self, worst_usd: float, actual_usd: float) -> None:
        if self.limit_usd is not None:
            self.reserved_usd -= worst_usd
        self.spent_usd += actual_usd
        if self.parent is not None:
            self.parent.settle(worst_usd, actual_usd)


class BudgetModel(WrapperModel):
    """Reserves each call's worst case against the run's `Budget` before delegating.

    It wraps the ledger, so the amount settled is exactly what the ledger recorded (for a call
    whose usage had to be estimated, its worst case).
    """

    def __init__(self, wrapped: ChatModel, budget: Budget, price: Price) -> None:
        super().__init__(wrapped)
        self.budget = budget
        self.price = price

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        if not self.budget.limited:
            return await self.wrapped.request(messages, params)
        bound = input_token_bound(messages, params.response_format)
        worst = worst_case_usd(bound, params.max_output_tokens or 0, self.price)
        what = f"{params.purpose} on '{self.profile}' ({self.model})"
        self.budget.reserve(worst, what)
        actual = 0.0
        try:
            response = await self.wrapped.request(messages, params)
            actual = response.call.cost_usd if response.call else 0.0
            return response
        finally:
            self.budget.settle(worst, actual)
