"""Solving one subproblem: its policy decides who answers (by default its label's role), and
the dependencies' answers go into the prompt."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from .. import prompts
from ..errors import OrchestratorError
from ..events import SubproblemFinished, SubproblemStarted
from ..models.base import Message, ModelResponse, RequestParams
from ..steps import Kind, Step, StepResult
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
    """Answer one subproblem through the run's policy; its result, or it raises (reported)."""
    from ..policies import Ask

    label: Kind = "reason" if step.kind == "reason" else "generate"
    template = prompts.load("solve_reason" if label == "reason" else "solve_generate")
    context = dependency_context(step, answers)

    async def respond(role: Kind, extra: Sequence[Message], params: RequestParams) -> ModelResponse:
        # The instruction to think in tags is for the profile that answers, not the label's.
        think = THINK_INSTRUCTION if ctx.spec.profile_for(role)[1].effective_think_tags else ""
        messages = template.render(task=task, subproblem=step.task, context=context, think=think)
        return await ctx.model_for(role).request([*messages, *extra], params)

    planned = role_route(ctx.spec, label, f"kind: {label}")
    emit(SubproblemStarted(step, planned))
    started, mark = time.monotonic(), ctx.ledger.mark()
    ask = Ask(step, label, step.task, RequestParams(purpose="solve", step=step.id), respond)
    try:
        routed = await ctx.policy().answer(ctx, ask)
    except OrchestratorError as exc:
        usage, cost = ctx.ledger.spent(step.id, since=mark)
        failed = StepResult(
            step, planned, "failed", usage=usage, cost_usd=cost,
            latency_s=time.monotonic() - started, error=exc.message,
        )  # fmt: skip
        emit(SubproblemFinished(failed))
        raise
    usage, cost = ctx.ledger.spent(step.id, since=mark)
    response = routed.response
    result = StepResult(
        step, routed.route, "done", response.content, response.trace, usage, cost,
        time.monotonic() - started,
    )  # fmt: skip
    emit(SubproblemFinished(result))
    return result
