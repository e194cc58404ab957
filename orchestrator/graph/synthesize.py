"""The synthesize node: the final answer from the task and every subproblem's answer, streamed."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from .. import prompts
from ..events import AnswerToken
from .context import RunContext, call, emit
from .state import RunState


def results_text(plan: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    """Each finished subproblem's task and answer (never its trace), in plan order."""
    parts = []
    for sub in plan:
        result = results.get(sub["id"])
        if result is not None:
            parts.append(f"[{sub['id']}] {sub['task']}\n{result['output']}")
    return "\n\n".join(parts)


async def synthesize_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    model = runtime.context.model_for("synthesize")
    messages = prompts.load("synthesize").render(
        task=state["task"], results=results_text(state["plan"], state.get("results") or {})
    )
    response = await call(
        model, messages, purpose="synthesize", on_token=lambda text: emit(AnswerToken(text))
    )
    return {"output": response.content}
