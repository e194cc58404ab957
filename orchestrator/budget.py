"""`limits.budget_usd`: spending never exceeds the budget, even with calls in flight at once.

Before each model call its worst case is reserved: the input counted at one token per UTF-8
byte (an upper bound for any BPE tokenizer) plus the whole `max_completion_tokens` cap, at the
profile's prices. A call whose worst case does not fit is not made. After the call, the
reservation is replaced by what the call really cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import BudgetExceededError
from .models.base import Message


def input_token_bound(messages: list[Message], extra_text: str = "") -> int:
    """An upper bound on the prompt's tokens: one per byte, plus a margin per message."""
    size = sum(len(m.content.encode()) + 16 for m in messages) + len(extra_text.encode())
    return size + 16


@dataclass
class Budget:
    """The run's spending so far and the worst cases of the calls in flight.

    Single event loop, no awaits between check and update: no lock is needed.
    """

    limit_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    degraded: bool = field(default=False)

    def reserve(self, worst_usd: float, what: str) -> None:
        if self.limit_usd is None:
            return
        if self.spent_usd + self.reserved_usd + worst_usd > self.limit_usd:
            raise BudgetExceededError(
                f"{what} could cost up to ${worst_usd:.4f}, and ${self.spent_usd:.4f} is spent "
                f"(${self.reserved_usd:.4f} more in flight) of the ${self.limit_usd:.4f} budget: "
                f"raise limits.budget_usd or lower max_output_tokens"
            )
        self.reserved_usd += worst_usd

    def settle(self, worst_usd: float, actual_usd: float) -> None:
        if self.limit_usd is not None:
            self.reserved_usd -= worst_usd
        self.spent_usd += actual_usd
