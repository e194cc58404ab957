"""`cascade`: the cheap role answers first; a check decides; a failed check escalates to the
reasoning role, whose prompt carries the cheap answer and what the check found (FrugalGPT,
AutoMix). `effort_ladder` raises reasoning_effort on each escalation; `max_escalations` bounds
them. Every sample, check and escalation is a billed call of the step.
"""

from __future__ import annotations

from .. import prompts
from ..errors import BudgetExceededError
from ..graph.context import RunContext
from ..policyspec import CascadePolicy
from ..steps import CheckResult
from .base import Ask, Policy, Routed, Said
from .checks import Check
from .sampling import draw


class Cascade(Policy):
    def __init__(self, name: str, spec: CascadePolicy, check: Check | None) -> None:
        super().__init__(name)
        self.spec = spec
        self.checker = check  # None: `agree`, which samples instead

    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        said, verdict, samples = await self._cheap(ctx, ask)
        checks = [verdict]
        escalations = 0
        while not verdict.passed and escalations < self.spec.max_escalations:
            stronger = await self._escalate(ctx, ask, said, verdict, escalations)
            if stronger is None:  # reasoning no longer fits the budget: keep what we have
                said = Said(
                    said.response, said.role, "check failed; escalating did not fit the budget"
                )
                break
            said, escalations, samples = stronger, escalations + 1, 1
            if escalations == self.spec.max_escalations or self.checker is None:
                break  # the last escalation is accepted; `agree` does not re-sample reasoning
            verdict = await self.checker.check(ctx, ask, said)
            checks.append(verdict)
        route = self.route(ctx, said, samples=samples, checks=checks, escalations=escalations)
        return Routed(said.response, route)

    async def _cheap(self, ctx: RunContext, ask: Ask) -> tuple[Said, CheckResult, int]:
        """The cheap answer and its check (for `agree`: the majority of k samples)."""
        spec = self.spec
        if self.checker is not None:
            said = await self.say(ctx, ask, "generate", "cascade: the cheap answer passed")
            return said, await self.checker.check(ctx, ask, said), 1
        drawn, tally = await draw(
            self, ctx, ask, "generate", spec.samples, spec.temperature, spec.extract
        )
        passed = tally.winner is not None and tally.share >= spec.threshold
        verdict = CheckResult("agree", passed, tally.describe(), tally.share)
        chosen = drawn[tally.pick]
        why = f"cascade: {tally.count} of {tally.total} cheap samples agreed"
        return Said(chosen.response, chosen.role, why), verdict, spec.samples

    async def _escalate(
        self, ctx: RunContext, ask: Ask, said: Said, verdict: CheckResult, done: int
    ) -> Said | None:
        """The reasoning role's answer, shown the cheap answer and the check's feedback."""
        ladder = self.spec.effort_ladder
        effort = ladder[min(done, len(ladder) - 1)] if ladder else None
        extra = prompts.load("escalate").render(
            answer=said.response.content, feedback=verdict.feedback or "it failed the check"
        )
        why = "check failed: escalated to reason" + (f" (effort {effort})" if effort else "")
        try:
            return await self.say(
                ctx, ask, "reason", why, extra, degrade=False, reasoning_effort=effort
            )
        except BudgetExceededError:
            if ctx.spec.limits.on_budget != "degrade":
                raise
            return None
