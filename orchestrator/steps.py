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
class CheckResult:
    """What a policy's check decided about an answer.

    `check` is `judge`, `agree`, `python` or `schema`; `score` is the share of samples that
    agreed (`agree`), else None; `feedback` says what was wrong, for the escalation prompt.
    """

    check: str
    passed: bool
    feedback: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "feedback": self.feedback,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(str(data["check"]), bool(data["passed"]), data.get("feedback") or "",
                   data.get("score"))  # fmt: skip


@dataclass(frozen=True)
class Route:
    """Who answered a step, and why: the record of every allocation decision.

    `role` is the workflow role whose profile gave the answer (None for graph nodes that call
    no model); `why` says what decided it (`kind: reason`, `budget: degraded to generate`,
    `check failed: escalated`, ...). `policy` names the policy that decided; `samples` is how
    many answers were drawn for the final one; `checks` are the checks made, in order (one per
    answer checked); `escalations` is how many times the step moved to a stronger role or
    effort.
    """

    role: Role | None
    profile: str
    model: str
    why: str = ""
    policy: str = "label"
    samples: int = 1
    checks: tuple[CheckResult, ...] = ()
    escalations: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The `route` record of a subproblem in `--json`."""
        return {
            "policy": self.policy,
            "role": self.role,
            "profile": self.profile,
            "model": self.model,
            "why": self.why,
            "samples": self.samples,
            "checks": [c.to_dict() for c in self.checks],
            "escalations": self.escalations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        return cls(
            role=data.get("role"),
            profile=data.get("profile") or "",
            model=data.get("model") or "",
            why=data.get("why") or "",
            policy=data.get("policy") or "label",
            samples=int(data.get("samples") or 1),
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks") or ()),
            escalations=int(data.get("escalations") or 0),
        )


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
            "route": self.route.to_dict(),
        }

    def to_state(self) -> dict[str, Any]:
        """A JSON-able dict for the checkpointed state."""
        u = self.usage
        return {
            **self.step.to_dict(),
            "route": self.route.to_dict(),
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
            # checkpoints before routes were records kept role/profile/model/why at the top
            route=Route.from_dict(data.get("route") or data),
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
