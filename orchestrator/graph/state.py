"""The run's state as LangGraph sees it, and the planner's output format.

State values are plain JSON-able dicts and lists so any checkpointer can store them; the typed
`Step` / `StepResult` values are built from them at the edges of each node (steps.py).
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ..steps import Kind


class PlannedSubproblem(BaseModel):
    """One subproblem as the planner writes it (the plan format)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    kind: Kind
    task: str = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """The planner's structured output."""

    model_config = ConfigDict(extra="forbid")

    subproblems: list[PlannedSubproblem]


def plan_json_schema(max_subproblems: int, *, grammar: bool = False) -> dict[str, Any]:
    """The schema sent as `response_format`: strict-mode compatible, bounded in length.

    Bounds matter for small local models: llama.cpp turns the schema into a grammar, so with
    `grammar` the strings get a `maxLength` too and a plan cannot ramble until its token cap
    cuts it off. (OpenAI's strict mode is not sent those: it need not accept them.)
    """
    text: dict[str, Any] = {"type": "string"}
    short: dict[str, Any] = {"type": "string"}
    if grammar:
        text, short = {**text, "maxLength": 240}, {**short, "maxLength": 16}
    item = {
        "type": "object",
        "properties": {
            "id": short,
            "kind": {"type": "string", "enum": ["reason", "generate"]},
            "task": text,
            "depends_on": {"type": "array", "maxItems": max_subproblems, "items": short},
        },
        "required": ["id", "kind", "task", "depends_on"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "subproblems": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_subproblems,
                "items": item,
            }
        },
        "required": ["subproblems"],
        "additionalProperties": False,
    }


def merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Reducer: results from steps that ran in parallel (or again) merge by id."""
    return {**left, **right}


class RunState(TypedDict, total=False):
    """What the checkpointer stores for a run of the default pipeline."""

    task: str
    approve_plan: bool  # stop after planning until a person approves, edits or aborts
    aborted: bool  # the plan was rejected at review
    plan: list[dict[str, Any]]  # Step.to_dict() values, in plan order
    plan_note: str | None  # set when the plan was repaired, replaced or edited
    results: Annotated[dict[str, dict[str, Any]], merge]  # step id -> StepResult.to_state()
    output: str
