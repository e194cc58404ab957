"""The run's state as LangGraph sees it, and the plan's shape.

State values are plain JSON-able dicts and lists so any checkpointer can store them; the typed
views (`SubproblemSpec`, `CallRecord`) are built from them at the edges of each node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["reason", "generate"]


class PlannedSubproblem(BaseModel):
    """One subproblem as the planner writes it (the Plan format of DESIGN.md)."""

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
    return {
        "type": "object",
        "properties": {
            "subproblems": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_subproblems,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": short,
                        "kind": {"type": "string", "enum": ["reason", "generate"]},
                        "task": text,
                        "depends_on": {
                            "type": "array",
                            "maxItems": max_subproblems,
                            "items": short,
                        },
                    },
                    "required": ["id", "kind", "task", "depends_on"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["subproblems"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class SubproblemSpec:
    """A validated subproblem, ready to schedule."""

    id: str
    kind: Kind
    task: str
    depends_on: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "task": self.task,
            "depends_on": list(self.depends_on),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubproblemSpec:
        return cls(data["id"], data["kind"], data["task"], tuple(data["depends_on"]))


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class RunState(TypedDict, total=False):
    """What the checkpointer stores for a run."""

    task: str
    approve_plan: bool  # stop after planning until a person approves, edits or aborts
    aborted: bool  # the plan was rejected at review
    plan: list[dict[str, Any]]  # SubproblemSpec.to_dict() values, in plan order
    plan_note: str | None  # set when the plan was repaired or replaced
    results: Annotated[dict[str, dict[str, Any]], _merge]  # subproblem id -> result
    output: str
