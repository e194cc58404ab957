"""A run's timeline from its run log: a bar per step and per call (failed attempts too), and the
critical path, the chain of dependent steps that decided how long the run took.

Times are seconds from the run's start. A step run more than once (its run was resumed after it
failed) has a bar per run. A call answered from the response cache takes no time here (its
recorded latency is the original call's). `orchestrator show` draws it in the terminal, as an
SVG picture (`observe.svg`) and as JSON (`Timeline.to_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import UsageError
from ..models.base import CallRecord
from ..models.retry import FailedAttempt
from ..storage import RunRow, StepSpan, open_storage, orchestrator_home

BarType = Literal["step", "call", "attempt"]
"""A step's whole run, one billed model call, or one failed (unbilled) attempt at a call."""
OUTER = ("plan", "synthesize")  # purposes of calls made outside any step, before and after
_SLACK_S = 0.05  # a call started this early still belongs to the step span (clocks, rounding)


@dataclass(frozen=True)
class TimelineBar:
    """One bar. `id` is `step:ID#n`, `call:n` or `attempt:n` (n counts within the run)."""

    id: str
    type: BarType
    label: str
    """What to print beside it: a step id, a call's purpose, `retry 1/3: 503`."""
    step: str | None
    """The step it is or belongs to; None for plan and synthesize calls."""
    purpose: str
    """`step` for steps; for calls and attempts why the call was made (plan, solve, ...)."""
    profile: str
    model: str
    start_s: float
    end_s: float
    cost_usd: float
    """Billed cost: the call's; for a step, the sum of its calls in this bar's span; 0 for a
    failed attempt."""
    status: str
    """step: done | failed | running; call: its finish_reason (or `cached`); attempt: the
    reason kind (status, timeout, connection, malformed, error)."""
    detail: str = ""
    """A failed attempt's reason in words; a failed step's error."""
    critical: bool = False
    """On the critical path."""
    retries: int = 0
    """For a step: failed attempts of its calls."""
    escalations: int = 0
    """For a step: how many times it moved to a stronger role or effort."""
    depends_on: tuple[str, ...] = ()
    wait_s: float = 0.0
    """For a failed attempt: the wait before the next attempt (0: none followed)."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "label": self.label, "step": self.step,
            "purpose": self.purpose, "profile": self.profile, "model": self.model,
            "start_s": round(self.start_s, 4), "end_s": round(self.end_s, 4),
            "duration_s": round(self.duration_s, 4), "cost_usd": round(self.cost_usd, 12),
            "status": self.status, "detail": self.detail, "critical": self.critical,
            "retries": self.retries, "escalations": self.escalations,
            "depends_on": list(self.depends_on), "wait_s": round(self.wait_s, 4),
        }  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """A run's bars, in the order they are drawn, and its critical path."""

    run_id: str
    workflow: str
    status: str
    started_at: float
    """Wall-clock time (epoch seconds) the timeline starts at."""
    wall_s: float
    """From the run's start to its end (or its last bar, if it has not ended)."""
    cost_usd: float
    """Every billed call of the run: the sum of the call bars' costs."""
    bars: tuple[TimelineBar, ...]
    critical_path: tuple[str, ...]
    """Bar ids from the first to the last: plan calls, the chain of steps, synthesize calls."""
    profiles: tuple[str, ...]
    """The profiles that appear, in the order their colours are given."""

    def to_dict(self) -> dict[str, Any]:
        """The `orchestrator show --json` document."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 4),
            "cost_usd": round(self.cost_usd, 12),
            "profiles": list(self.profiles),
            "critical_path": list(self.critical_path),
            "bars": [bar.to_dict() for bar in self.bars],
        }


async def read_timeline(run_id: str, home: Path | None = None) -> Timeline:
    """The timeline of run `run_id` in the state directory `home` (default ORCHESTRATOR_HOME);
    UsageError if there is no such run."""
    home = home if home is not None else orchestrator_home()
    async with open_storage(home) as storage:
        row = await storage.runs.get_run(run_id)
        if row is None:
            raise UsageError(
                f"no run with id {run_id} in {storage.location}: `orchestrator runs` lists them"
            )
        calls = await storage.runs.calls(run_id)
        attempts = await storage.runs.attempts(run_id)
        spans = await storage.runs.steps(run_id)
    return build_timeline(row, calls, attempts, spans)


def build_timeline(
    run: RunRow,
    calls: Sequence[CallRecord],
    attempts: Sequence[FailedAttempt],
    spans: Sequence[StepSpan],
) -> Timeline:
    """The timeline of `run` from what its run log holds."""
    starts = [c.started_at for c in calls if c.started_at > 0]
    starts += [a.started_at for a in attempts] + [s.started_at for s in spans]
    t0 = min([run.created_at, *starts])
    call_bars = [_call_bar(i, c, t0) for i, c in enumerate(calls)]
    attempt_bars = [_attempt_bar(i, a, t0) for i, a in enumerate(attempts)]
    ends = [b.end_s for b in call_bars + attempt_bars] + [
        s.finished_at - t0 for s in spans if s.finished_at is not None
    ]
    wall = max([0.0, *ends] + ([run.updated_at - t0] if run.status != "running" else []))
    step_bars = _step_bars(spans, t0, wall, call_bars, attempt_bars)
    bars = _ordered(step_bars, call_bars + attempt_bars)
    path = _critical_path(bars)
    bars = [replace(b, critical=b.id in path) for b in bars]
    profiles = tuple(dict.fromkeys(b.profile for b in bars if b.profile))
    return Timeline(
        run.run_id, run.workflow, run.status, t0, wall, sum(c.cost_usd for c in calls),
        tuple(bars), path, profiles,
    )  # fmt: skip


def _call_bar(i: int, call: CallRecord, t0: float) -> TimelineBar:
    start = (call.started_at or t0) - t0
    end = start if call.cached else start + call.latency_s
    status = "cached" if call.cached else call.finish_reason or ""
    label = call.purpose if call.step is None else f"{call.purpose} {call.step}"
    return TimelineBar(
        f"call:{i}", "call", label, call.step, call.purpose, call.profile, call.model,
        start, end, call.cost_usd, status,
    )  # fmt: skip


def _attempt_bar(i: int, a: FailedAttempt, t0: float) -> TimelineBar:
    why = str(a.status) if a.reason == "status" else a.reason
    label = f"attempt {a.number}/{a.attempts} failed: {why}"
    start = a.started_at - t0
    return TimelineBar(
        f"attempt:{i}", "attempt", label, a.step, a.purpose, a.profile, a.model,
        start, start + a.duration_s, 0.0, a.reason, a.detail, wait_s=a.wait_s or 0.0,
    )  # fmt: skip


def _step_bars(
    spans: Sequence[StepSpan],
    t0: float,
    wall: float,
    calls: Sequence[TimelineBar],
    attempts: Sequence[TimelineBar],
) -> list[TimelineBar]:
    bars: list[TimelineBar] = []
    for n, span in enumerate(spans):
        sid = span.step.id
        start = span.started_at - t0
        end = wall if span.finished_at is None else span.finished_at - t0

        cost = sum(c.cost_usd for c in calls if _within(c, sid, start, end))
        retries = sum(1 for a in attempts if _within(a, sid, start, end))
        bar = TimelineBar(
            f"step:{sid}#{n}", "step", sid, sid, "step", span.profile, span.model, start, end,
            cost, span.status, span.error or "", False, retries, span.escalations,
            span.step.depends_on,
        )  # fmt: skip
        bars.append(bar)
    return bars


def _within(bar: TimelineBar, step: str | None, start: float, end: float) -> bool:
    """`bar` is a call (or attempt) of `step` made between `start` and `end`."""
    return bar.step == step and start - _SLACK_S <= bar.start_s <= end + _SLACK_S


def _ordered(steps: list[TimelineBar], parts: list[TimelineBar]) -> list[TimelineBar]:
    """Plan calls first, then each step followed by its calls, synthesize calls last."""
    by_start = sorted(parts, key=lambda b: (b.start_s, b.id))
    out = [b for b in by_start if b.step is None and b.purpose == "plan"]
    placed = {b.id for b in out}
    for step in sorted(steps, key=lambda b: (b.start_s, b.id)):
        out.append(step)
        for bar in by_start:
            if bar.id not in placed and _within(bar, step.step, step.start_s, step.end_s):
                out.append(bar)
                placed.add(bar.id)
    rest = [b for b in by_start if b.id not in placed]  # synthesize, and calls of no step span
    return out + sorted(rest, key=lambda b: (b.purpose == "synthesize", b.start_s, b.id))


def _critical_path(bars: Sequence[TimelineBar]) -> tuple[str, ...]:
    """Plan calls, then the chain of steps ending with the step that ended last (each one's
    predecessor is its dependency that ended last), then synthesize calls."""
    latest: dict[str, TimelineBar] = {}  # a step run more than once: its last run counts
    for bar in bars:
        if bar.type == "step":
            latest[bar.id.split(":", 1)[1].rsplit("#", 1)[0]] = bar
    chain: list[str] = []
    current = max(latest.values(), key=lambda b: (b.end_s, b.id), default=None)
    while current is not None and current.id not in chain:
        chain.append(current.id)
        deps = [latest[d] for d in current.depends_on if d in latest]
        current = max(deps, key=lambda b: (b.end_s, b.id), default=None)
    outer = {p: [b.id for b in bars if b.step is None and b.purpose == p] for p in OUTER}
    return (*outer["plan"], *reversed(chain), *outer["synthesize"])
