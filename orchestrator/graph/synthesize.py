"""The synthesize node: the final answer from the task and every subproblem's answer, streamed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from .. import prompts
from ..events import AnswerRestarted, AnswerToken
from ..models.base import RequestParams
from ..steps import Step
from .context import RunContext, emit
from .state import RunState


def results_text(plan: list[Step], outputs: Mapping[str, str]) -> str:
    """Each finished subproblem's task and answer (never its trace), in plan order."""
    return "\n\n".join(
        f"[{step.id}] {step.task}\n{outputs[step.id]}" for step in plan if step.id in outputs
    )


async def synthesize_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    plan = [Step.from_dict(s) for s in state["plan"]]
    outputs = {sid: r["output"] for sid, r in (state.get("results") or {}).items()}
    messages = prompts.load("synthesize").render(
        task=state["task"], results=results_text(plan, outputs)
    )
    params = RequestParams(
        purpose="synthesize",
        on_token=lambda text: emit(AnswerToken(text)),
        on_restart=lambda: emit(AnswerRestarted()),
    )
    response = await runtime.context.model_for("synthesize").request(messages, params)
    return {"output": response.content}
