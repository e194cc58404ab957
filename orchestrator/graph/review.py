"""The review node: with `approve_plan`, the run stops after planning until a person decides.

It is a LangGraph interrupt, so the pause survives the process: `orchestrator resume ID` (or
`Workflow.aresume(run_id, Approve())`) continues it later, with the plan approved, edited or
the run aborted. The pause and the decision are the typed values of resume.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.graph import END
from langgraph.types import interrupt

from ..errors import UsageError
from ..resume import Abort, Edit, PlanReview, pause_value, read_review
from ..steps import Step
from .plan import check_plan
from .state import Plan, RunState


def validate_edit(
    plan: Sequence[Step | Mapping[str, Any]], max_subproblems: int
) -> tuple[Step, ...]:
    """An edited plan, checked like a planner's; raises UsageError naming what is wrong."""
    items = [s.to_dict() if isinstance(s, Step) else dict(s) for s in plan]
    try:
        parsed = Plan.model_validate({"subproblems": items})
    except ValueError as exc:
        raise UsageError(f"the edited plan is not in the plan format: {exc}") from None
    checked = check_plan(parsed, max_subproblems)
    problems = [*checked.errors, *checked.repairs]
    if problems:
        raise UsageError("the edited plan cannot run: " + "; ".join(problems))
    return checked.steps


async def review_node(state: RunState) -> dict[str, Any]:
    if not state.get("approve_plan"):
        return {}
    plan = tuple(Step.from_dict(s) for s in state["plan"])
    decision = read_review(interrupt(pause_value(PlanReview(plan, state.get("plan_note")))))
    if isinstance(decision, Abort):
        return {"aborted": True}
    if isinstance(decision, Edit):
        edited = [s.to_dict() if isinstance(s, Step) else dict(s) for s in decision.plan]
        return {"plan": edited, "plan_note": "plan edited at review"}
    return {}


def after_review(state: RunState) -> str:
    return END if state.get("aborted") else "execute"
