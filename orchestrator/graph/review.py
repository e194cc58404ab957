"""The review node: with `approve_plan`, the run stops after planning until a person decides.

It is a LangGraph interrupt, so the pause survives the process: `orchestrator resume ID` (or
`Workflow.aresume(run_id, decision=...)`) continues it later, with the plan approved, edited or
the run aborted.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END
from langgraph.types import interrupt

from ..errors import UsageError
from .plan import check_plan
from .state import Plan, RunState

Decision = Literal["approve", "edit", "abort"]
ABORTED = "the plan was rejected at review"


def validate_edit(subproblems: list[dict[str, Any]], max_subproblems: int) -> list[dict[str, Any]]:
    """An edited plan, checked like a planner's; raises UsageError naming what is wrong."""
    try:
        plan = Plan.model_validate({"subproblems": subproblems})
    except ValueError as exc:
        raise UsageError(f"the edited plan is not in the plan format: {exc}") from None
    checked = check_plan(plan, max_subproblems)
    problems = [*checked.errors, *checked.repairs]
    if problems:
        raise UsageError("the edited plan cannot run: " + "; ".join(problems))
    return [s.to_dict() for s in checked.subproblems]


async def review_node(state: RunState) -> dict[str, Any]:
    if not state.get("approve_plan"):
        return {}
    answer = interrupt({"plan": state["plan"], "note": state.get("plan_note")})
    action = answer.get("action")
    if action == "abort":
        return {"aborted": True}
    if action == "edit":
        return {"plan": answer["plan"], "plan_note": "plan edited at review"}
    return {}


def after_review(state: RunState) -> str:
    return END if state.get("aborted") else "execute"
