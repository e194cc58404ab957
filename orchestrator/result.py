"""`RunResult` and `Usage`: what a run produced and what it cost, in the `--json` shape."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .models.base import CallRecord
from .models.pricing import reprice
from .spec import WorkflowSpec
from .steps import StepResult

# awaiting_approval: stopped after planning (approve_plan) until `resume` gives a decision.
# awaiting_input: a custom graph's human node asked `question`; `resume` gives the answer.
Status = Literal["completed", "failed", "budget_exceeded", "awaiting_approval", "awaiting_input"]


@dataclass(frozen=True)
class ProfileUsage:
    """Every call one profile made in a run, added up.

    `estimated` is true when some call's endpoint reported no usage: its tokens were estimated
    from the text and its cost is that call's worst case. `cached_calls` of the `calls` were
    answered from the response cache: their tokens are counted, their cost is 0.
    """

    model: str
    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False
    cached_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape; `"estimated": true` is added only when some usage was, and
        `cached_calls` only when some call was answered from the response cache."""
        out: dict[str, Any] = {
            "model": self.model,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": round(self.cost_usd, 8),
        }
        if self.cached_calls:
            out["cached_calls"] = self.cached_calls
        return {**out, "estimated": True} if self.estimated else out

    def add(self, call: CallRecord) -> ProfileUsage:
        u = call.usage
        return ProfileUsage(
            self.model,
            self.calls + 1,
            self.input_tokens + u.input_tokens,
            self.cached_input_tokens + u.cached_input_tokens,
            self.output_tokens + u.output_tokens,
            self.reasoning_tokens + u.reasoning_tokens,
            self.cost_usd + call.cost_usd,
            self.estimated or u.estimated,
            self.cached_calls + int(call.cached),
        )


@dataclass(frozen=True)
class Counterfactual:
    """What the same run would have cost with every call on the reasoning profile, and with
    every call on the generative one — an estimate, from the run's own tokens.

    Each billed call's tokens are priced at the other profile's rates (cached tokens at its
    cached rate). Re-priced on a profile that does not reason, a call's reasoning tokens are
    dropped; re-priced on one that does, no thinking is added — so `all_reason_usd` is a lower
    bound: a reasoning model would also have thought about what the cheap one answered.
    """

    all_reason_usd: float
    all_generate_usd: float
    reason_profile: str
    generate_profile: str

    @classmethod
    def of(cls, calls: Iterable[CallRecord], spec: WorkflowSpec) -> Counterfactual:
        (reason, r), (generate, g) = spec.profile_for("reason"), spec.profile_for("generate")
        # A router's embedding calls are what routing costs: a run on one profile makes none.
        calls = [c for c in calls if c.purpose != "route"]
        return cls(
            sum(reprice(c.usage, r.price, reasoning=r.reasoning) for c in calls),
            sum(reprice(c.usage, g.price, reasoning=g.reasoning) for c in calls),
            reason,
            generate,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "all_reason_usd": round(self.all_reason_usd, 8),
            "all_generate_usd": round(self.all_generate_usd, 8),
            "reason_profile": self.reason_profile,
            "generate_profile": self.generate_profile,
            "estimate": True,
        }


@dataclass(frozen=True)
class Usage:
    """A run's cost: the total, per profile, and (for a workflow's run) the counterfactual."""

    cost_usd: float = 0.0
    by_profile: dict[str, ProfileUsage] = field(default_factory=dict)
    counterfactual: Counterfactual | None = None

    @classmethod
    def from_calls(cls, calls: Iterable[CallRecord], spec: WorkflowSpec | None = None) -> Usage:
        calls = list(calls)
        by_profile: dict[str, ProfileUsage] = {}
        for call in calls:
            usage = by_profile.get(call.profile, ProfileUsage(call.model))
            by_profile[call.profile] = usage.add(call)
        counterfactual = Counterfactual.of(calls, spec) if spec is not None else None
        return cls(sum(p.cost_usd for p in by_profile.values()), by_profile, counterfactual)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cost_usd": round(self.cost_usd, 8),
            "by_profile": {name: p.to_dict() for name, p in self.by_profile.items()},
        }
        if self.counterfactual is not None:
            out["counterfactual"] = self.counterfactual.to_dict()
        return out


@dataclass(frozen=True)
class ErrorInfo:
    """Why a run did not complete: the error's class name and its one-line message."""

    type: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run. `to_dict()` is exactly what `orchestrator run --json` prints.

    `subproblems` are the plan's steps (a custom graph's nodes) in plan order, finished or not.
    `plan_note` says when the planner's plan was repaired or replaced (None when it was used
    as written); `question` is what a run `awaiting_input` asks; `calls` is every billed call
    of every attempt, in the order the run log has them (not part of `--json`).
    """

    run_id: str
    status: Status
    output: str
    subproblems: tuple[StepResult, ...]
    usage: Usage
    error: ErrorInfo | None = None
    plan_note: str | None = None
    question: str | None = None
    calls: tuple[CallRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "output": self.output,
            "subproblems": [s.to_dict() for s in self.subproblems],
            "usage": self.usage.to_dict(),
            "error": self.error.to_dict() if self.error else None,
        }
