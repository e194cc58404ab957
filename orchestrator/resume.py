"""The typed resume protocol: what a paused run waits for, and the decision that continues it.

A run pauses (a LangGraph interrupt, so the pause survives the process) for one of two reasons:

- `PlanReview`: `approve_plan` stopped it after planning; continue with `Approve()`,
  `Edit(plan)` (validated like a planner's plan) or `Abort()`;
- `Question`: a custom graph's `human` node asked something; continue with `Answer(value)`.

    result = await wf.arun(task, approve_plan=True)      # status: awaiting_approval
    result = await wf.aresume(result.run_id, Approve())

This module is the only place that encodes pauses into interrupts and decisions into
LangGraph `Command`s, and the only place that reads them back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.types import Command, Interrupt

from .errors import UsageError
from .steps import Step


@dataclass(frozen=True)
class Approve:
    """Run the plan as it stands."""


@dataclass(frozen=True)
class Edit:
    """Run this plan instead: a sequence of `Step`s or plan-format dicts."""

    plan: Sequence[Step | Mapping[str, Any]]


@dataclass(frozen=True)
class Abort:
    """Reject the plan: the run ends as failed (`PlanRejected`), having run nothing."""


@dataclass(frozen=True)
class Answer:
    """The answer to a human node's question; it becomes that node's output."""

    value: Any


Decision = Approve | Edit | Abort | Answer
"""What `Workflow.resume` accepts for a paused run."""


@dataclass(frozen=True)
class PlanReview:
    """The run stopped after planning; `plan` is what would run, `note` any repair made."""

    plan: tuple[Step, ...]
    note: str | None = None


@dataclass(frozen=True)
class Question:
    """A human node (`node`) asked `message` and waits for an `Answer`."""

    node: str
    message: str


Pause = PlanReview | Question
ABORTED = "the plan was rejected at review"


def pause_value(pause: Pause) -> dict[str, Any]:
    """The JSON-able interrupt value a node raises for `pause`."""
    if isinstance(pause, PlanReview):
        plan = [s.to_dict() for s in pause.plan]
        return {"pause": "plan_review", "plan": plan, "note": pause.note}
    return {"pause": "question", "node": pause.node, "message": pause.message}


def read_pause(interrupts: Sequence[Interrupt]) -> Pause | None:
    """What a paused run waits for, from its pending interrupts (None: it is not paused)."""
    if not interrupts:
        return None
    value = interrupts[0].value
    if isinstance(value, Mapping) and (value.get("pause") == "question" or "node" in value):
        return Question(str(value["node"]), str(value.get("message") or ""))
    plan = value.get("plan") if isinstance(value, Mapping) else None
    note = value.get("note") if isinstance(value, Mapping) else None
    return PlanReview(tuple(Step.from_dict(s) for s in plan or ()), note)


def command_for(pause: Pause | None, decision: Decision, run_id: str) -> Command[Any]:
    """The LangGraph command that continues a run paused at `pause` with `decision`.

    Raises `UsageError` when the decision does not answer what the run waits for.
    """
    if pause is None:
        raise UsageError(f"run {run_id} is not waiting for a decision or an answer")
    if isinstance(pause, Question):
        if not isinstance(decision, Answer):
            raise UsageError(f"run {run_id} is waiting for input: resume it with Answer(value)")
        return Command(resume=decision.value)
    if isinstance(decision, Approve):
        return Command(resume={"action": "approve"})
    if isinstance(decision, Abort):
        return Command(resume={"action": "abort"})
    if isinstance(decision, Edit):
        plan = [s.to_dict() if isinstance(s, Step) else dict(s) for s in decision.plan]
        return Command(resume={"action": "edit", "plan": plan})
    raise UsageError(
        f"run {run_id} is waiting for plan approval: resume it with Approve(), Edit(plan) "
        "or Abort()"
    )


def read_review(value: Any) -> Approve | Edit | Abort:
    """A plan-review decision from the value `interrupt()` returned inside the graph."""
    action = value.get("action") if isinstance(value, Mapping) else None
    if action == "abort":
        return Abort()
    if action == "edit":
        return Edit(tuple(Step.from_dict(s) for s in value["plan"]))
    return Approve()


def waiting_message(pause: Pause, run_id: str) -> str:
    """Why a paused run cannot simply be resumed, and what to give it."""
    if isinstance(pause, PlanReview):
        return (
            f"run {run_id} is waiting for plan approval: give a decision (approve, edit or abort)"
        )
    return f"run {run_id} is waiting for input: give the answer"
