"""One family for a subproblem: the planned `Step`, its `Route`, and its `StepResult`.

A step is a subproblem of the plan (kind `reason` or `generate`) or a node of a custom graph
(kind: its node type). The same three values are used everywhere a step appears: the run's
checkpointed state, the events, the live view, the approval prompt, `RunResult.subproblems` and
`--json`. State stores them as plain JSON-able dicts (`to_state` / `from_state`), so any
checkpointer can hold them and a checkpoint never depends on a class path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .models.base import TokenUsage
from .spec import Role

Kind = Literal["reason", "generate"]
"""A planned subproblem's kind: it routes to the reasoning or the generative role."""
StepKind = Literal["reason", "generate", "plan", "verify", "map", "human", "python"]
"""A step's kind: a subproblem's kind, or a custom graph node's type."""
StepStatus = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True)
class Step:
    """One planned step: `id`, `kind`, the `task` it solves, the steps it `depends_on`.

    `to_dict` is the plan format: `{"id", "kind", "task", "depends_on": [...]}`.
    """

    id: str
    kind: StepKind
    task: str
    depends_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "task": self.task,
            "depends_on": list(self.depends_on),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        kind = cast(StepKind, data["kind"])
        return cls(str(data["id"]), kind, str(data["task"]), tuple(data.get("depends_on") or ()))


@dataclass(frozen=True)
class Route:
    """Who answers a step, and why.

    `role` is the workflow role whose profile answers (None for graph nodes that call no
    model); `why` says what decided it: `kind: reason`, `budget: degraded to generate`,
    `node profile`, ...
    """

    role: Role | None
    profile: str
    model: str
    why: str = ""


@dataclass(frozen=True)
class StepResult:
    """A step as the run left it: the step, its route, its status and answer, what it cost.

    `trace` is the model's reasoning, kept apart: never in another prompt or in the answer.
    `usage` and `cost_usd` cover the step's calls in the run attempt that finished it.
    """

    step: Step
    route: Route
    status: StepStatus = "pending"
    output: str = ""
    trace: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    error: str | None = None

    @property
    def id(self) -> str:
        return self.step.id

    @property
    def kind(self) -> StepKind:
        return self.step.kind

    @property
    def task(self) -> str:
        return self.step.task

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.step.depends_on

    @property
    def profile(self) -> str:
        return self.route.profile

    @property
    def model(self) -> str:
        return self.route.model

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape of one subproblem."""
        return {
            "id": self.id,
            "kind": self.kind,
            "profile": self.profile,
            "model": self.model,
            "status": self.status,
            "output": self.output,
        }

    def to_state(self) -> dict[str, Any]:
        """A JSON-able dict for the checkpointed state."""
        u = self.usage
        return {
            **self.step.to_dict(),
            "role": self.route.role,
            "profile": self.route.profile,
            "model": self.route.model,
            "why": self.route.why,
            "status": self.status,
            "output": self.output,
            "trace": self.trace,
            "usage": [u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens],
            "estimated": u.estimated,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "error": self.error,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any], step: Step | None = None) -> StepResult:
        """Read `to_state`'s dict back; `step` fills what older checkpoints did not store."""
        if step is None:
            step = Step.from_dict({"task": "", **data})
        i, c, o, r = (int(n) for n in data.get("usage") or (0, 0, 0, 0))
        return cls(
            step=step,
            route=Route(data.get("role"), data["profile"], data["model"], data.get("why") or ""),
            status=data["status"],
            output=data.get("output") or "",
            trace=data.get("trace"),
            usage=TokenUsage(i, c, o, r, estimated=bool(data.get("estimated"))),
            cost_usd=float(data.get("cost_usd") or 0.0),
            latency_s=float(data.get("latency_s") or 0.0),
            error=data.get("error"),
        )


SubproblemResult = StepResult
"""The name `RunResult.subproblems` items had before steps were one family; same type."""
