"""Solving one subproblem: route by kind, put the dependencies' answers in the prompt."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import prompts
from ..errors import BudgetExceededError, OrchestratorError
from ..events import SubproblemFinished, SubproblemStarted
from ..models.base import TokenUsage
from .context import RunContext, call, emit
from .state import Kind, SubproblemSpec

THINK_INSTRUCTION = (
    " First write your reasoning inside <think></think> tags, then the answer after the"
    " closing tag."
)


def dependency_context(sub: SubproblemSpec, answers: Mapping[str, str]) -> str:
    """The answers (never the traces) of the subproblems `sub` depends on."""
    if not sub.depends_on:
        return ""
    parts = [f"Result of {dep}:\n{answers[dep]}" for dep in sub.depends_on]
    return "\nResults you can build on:\n" + "\n\n".join(parts) + "\n"


async def solve(
    ctx: RunContext, task: str, sub: SubproblemSpec, answers: Mapping[str, str]
) -> dict[str, Any]:
    """Run one subproblem on the profile its kind routes to; return its result record."""
    degrade = sub.kind == "reason" and ctx.spec.limits.on_budget == "degrade"
    if degrade and ctx.budget.degraded:
        return await _solve_on(ctx, "generate", task, sub, answers)
    try:
        return await _solve_on(ctx, sub.kind, task, sub, answers)
    except BudgetExceededError:
        if not degrade:
            raise
        # The reasoning model no longer fits the budget: this and every remaining reasoning
        # subproblem go to the generative role.
        ctx.budget.degraded = True
        return await _solve_on(ctx, "generate", task, sub, answers)


async def _solve_on(
    ctx: RunContext, role: Kind, task: str, sub: SubproblemSpec, answers: Mapping[str, str]
) -> dict[str, Any]:
    model = ctx.model_for(role)
    _, profile = ctx.spec.profile_for(role)
    think = THINK_INSTRUCTION if profile.effective_think_tags else ""
    template = prompts.load("solve_reason" if sub.kind == "reason" else "solve_generate")
    messages = template.render(
        task=task, subproblem=sub.task, context=dependency_context(sub, answers), think=think
    )
    emit(SubproblemStarted(sub.id, sub.kind, model.profile, model.model))
    started = time.monotonic()
    result: dict[str, Any] = {
        "id": sub.id,
        "kind": sub.kind,
        "profile": model.profile,
        "model": model.model,
    }
    try:
        response = await call(model, messages, purpose=f"solve:{sub.id}")
    except OrchestratorError as exc:
        usage = sum((c.usage for c in exc.calls), TokenUsage())
        cost = sum(c.cost_usd for c in exc.calls)
        emit(
            SubproblemFinished(
                sub.id,
                sub.kind,
                model.profile,
                model.model,
                "failed",
                "",
                usage,
                cost,
                time.monotonic() - started,
                exc.message,
            )
        )
        raise
    latency = time.monotonic() - started
    emit(
        SubproblemFinished(
            sub.id,
            sub.kind,
            model.profile,
            model.model,
            "done",
            response.content,
            response.usage,
            response.cost_usd,
            latency,
        )
    )
    return {
        **result,
        "status": "done",
        "output": response.content,
        "trace": response.trace,
        "latency_s": latency,
    }
