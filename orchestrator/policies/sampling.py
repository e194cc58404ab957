"""Drawing several answers to one step and voting on them: `self_consistency`, and the `agree`
check of a cascade."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from ..graph.context import RunContext
from ..policyspec import SelfConsistencyPolicy
from ..steps import CheckResult, Kind
from .base import Ask, Policy, Routed, Said
from .extract import extract


@dataclass(frozen=True)
class Vote:
    """The majority among extracted answers (None never wins: an answer with nothing to
    extract agrees with nothing)."""

    winner: str | None
    count: int
    total: int
    pick: int  # the index of the first sample that gave the winner
    tally: tuple[tuple[str, int], ...]

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    def describe(self) -> str:
        shown = ", ".join(f"{answer!r} ×{n}" for answer, n in self.tally[:5]) or "nothing"
        return f"{self.count} of {self.total} samples agree; answers: {shown}"


def vote(answers: list[str | None]) -> Vote:
    counted = Counter(a for a in answers if a is not None)
    if not counted:
        return Vote(None, 0, len(answers), 0, ())
    winner, count = counted.most_common(1)[0]
    return Vote(winner, count, len(answers), answers.index(winner), tuple(counted.most_common()))


async def draw(
    policy: Policy,
    ctx: RunContext,
    ask: Ask,
    role: Kind,
    samples: int,
    temperature: float,
    how: str,
) -> tuple[list[Said], Vote]:
    """`samples` answers from `role` at once, told apart by their sample index (their seed and
    cache key) and drawn at `temperature` where the profile takes one; and their vote."""
    why = f"{samples} samples on {role}"
    said = await asyncio.gather(
        *(
            policy.say(ctx, ask, role, why, sample=i + 1, temperature=temperature)
            for i in range(samples)
        )
    )
    return list(said), vote([extract(s.response.content, how) for s in said])


class SelfConsistency(Policy):
    """k samples on a role, then the majority answer over what `extract` pulls out."""

    def __init__(self, name: str, spec: SelfConsistencyPolicy) -> None:
        super().__init__(name)
        self.spec = spec

    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        spec = self.spec
        said, tally = await draw(
            self, ctx, ask, spec.role, spec.samples, spec.temperature, spec.extract
        )
        chosen = said[tally.pick]
        check = CheckResult("vote", tally.winner is not None, tally.describe(), tally.share)
        route = self.route(ctx, chosen, samples=spec.samples, checks=(check,))
        return Routed(chosen.response, route)
