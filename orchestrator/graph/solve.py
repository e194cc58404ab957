"""Solving one subproblem: route by kind, put the dependencies' answers in the prompt."""

from __future__ import annotations

import time
from collections.abc import Mapping

from .. import prompts
from ..errors import BudgetExceededError, OrchestratorError
from ..events import SubproblemFinished, SubproblemStarted
from ..models.base import RequestParams
from ..steps import Kind, Route, Step, StepResult
from .context import RunContext, emit, role_route

THINK_INSTRUCTION = (
    " First write your reasoning inside <think></think> tags, then the answer after the"
    " closing tag."
)


def dependency_context(step: Step, answers: Mapping[str, str]) -> str:
    """The answers (never the traces) of the steps `step` depends on."""
    if not step.depends_on:
        return ""
    parts = [f"Result of {dep}:\n{answers[dep]}" for dep in step.depends_on]
    return "\nResults you can build on:\n" + "\n\n".join(parts) + "\n"


async def solve(ctx: RunContext, task: str, step: Step, answers: Mapping[str, str]) -> StepResult:
    """Run one subproblem on the role its kind routes to (or the generative role, when the
    budget no longer fits reasoning and `limits.on_budget` is `degrade`)."""
    kind: Kind = "reason" if step.kind == "reason" else "generate"
    degrade = kind == "reason" and ctx.spec.limits.on_budget == "degrade"
    degraded = role_route(ctx.spec, "generate", "budget: degraded from reason")
    if degrade and ctx.budget.degraded:
        return await _solve_on(ctx, degraded, task, step, answers)
    try:
        return await _solve_on(
            ctx, role_route(ctx.spec, kind, f"kind: {kind}"), task, step, answers
        )
    except BudgetExceededError:
        if not degrade:
            raise
        # The reasoning model no longer fits the budget: this and every remaining reasoning
        # subproblem go to the generative role.
        ctx.budget.degraded = True
        return await _solve_on(ctx, degraded, task, step, answers)


async def _solve_on(
    ctx: RunContext, route: Route, task: str, step: Step, answers: Mapping[str, str]
) -> StepResult:
    profile = ctx.spec.models[route.profile]
    think = THINK_INSTRUCTION if profile.effective_think_tags else ""
    template = prompts.load("solve_reason" if step.kind == "reason" else "solve_generate")
    messages = template.render(
        task=task, subproblem=step.task, context=dependency_context(step, answers), think=think
    )
    emit(SubproblemStarted(step, route))
    started, mark = time.monotonic(), ctx.ledger.mark()
    try:
        response = await ctx.models[route.profile].request(
            messages, RequestParams(purpose="solve", step=step.id)
        )
    except OrchestratorError as exc:
        usage, cost = ctx.ledger.spent(step.id, since=mark)
        failed = StepResult(
            step, route, "failed", usage=usage, cost_usd=cost,
            latency_s=time.monotonic() - started, error=exc.message,
        )  # fmt: skip
        emit(SubproblemFinished(failed))
        raise
    usage, cost = ctx.ledger.spent(step.id, since=mark)
    result = StepResult(
        step, route, "done", response.content, response.trace, usage, cost,
        time.monotonic() - started,
    )  # fmt: skip
    emit(SubproblemFinished(result))
    return result
