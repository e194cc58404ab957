"""`label` (the default) and `fixed`: one answer from one role, no checks."""

from __future__ import annotations

from ..graph.context import RunContext
from ..policyspec import FixedPolicy
from .base import Ask, Policy, Routed


class Label(Policy):
    """The step's label picks the role: the planner's kind, or a graph node's type."""

    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        said = await self.say(ctx, ask, ask.label, f"kind: {ask.label}")
        return Routed(said.response, self.route(ctx, said))


class Fixed(Policy):
    """Every step on one role, whatever its label (the all-generate / all-reason baselines)."""

    def __init__(self, name: str, spec: FixedPolicy) -> None:
        super().__init__(name)
        self.role = spec.role

    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        said = await self.say(ctx, ask, self.role, f"policy: always {self.role}")
        return Routed(said.response, self.route(ctx, said))
