"""The run log's rows for failed attempts and step spans: SQL, and rows to records and back.

Kept apart from sqlite_runlog.py, which writes them through its group commit like calls.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import cast

from ..models.base import CallPurpose
from ..models.retry import FailedAttempt, RetryReason
from ..steps import Route, Step, StepKind, StepResult
from .base import StepSpan

_Row = tuple[object, ...]

_ATTEMPT_COLUMNS = (
    "profile, model, purpose, step, number, attempts, reason, status, detail, started_at, "
    "duration_s, wait_s"
)
INSERT_ATTEMPT = (
    f"insert into attempts (run_id, {_ATTEMPT_COLUMNS}, created_at) values ({', '.join('?' * 14)})"
)
SELECT_ATTEMPTS = f"select {_ATTEMPT_COLUMNS} from attempts where run_id = ? order by id"

_STEP_COLUMNS = (
    "step, phase, at, kind, depends_on, profile, model, status, cost_usd, policy, escalations, "
    "error"
)
INSERT_STEP = f"insert into step_events (run_id, {_STEP_COLUMNS}) values ({', '.join('?' * 13)})"
SELECT_STEPS = f"select {_STEP_COLUMNS} from step_events where run_id = ? order by id"


def attempt_row(run_id: str, a: FailedAttempt, now: float) -> _Row:
    return (
        run_id, a.profile, a.model, a.purpose, a.step, a.number, a.attempts, a.reason, a.status,
        a.detail, a.started_at, a.duration_s, a.wait_s, now,
    )  # fmt: skip


def attempt_record(row: sqlite3.Row) -> FailedAttempt:
    profile, model, purpose, step, number, attempts, reason, status, detail, *times = row
    started_at, duration_s, wait_s = times
    return FailedAttempt(
        profile, model, cast(CallPurpose, purpose), step, number, attempts,
        cast(RetryReason, reason), detail, status, started_at, duration_s, wait_s,
    )  # fmt: skip


def started_row(run_id: str, step: Step, route: Route, at: float) -> _Row:
    deps = json.dumps(list(step.depends_on))
    return (
        run_id, step.id, "started", at, step.kind, deps, route.profile, route.model, "running",
        0.0, route.policy, 0, None,
    )  # fmt: skip


def finished_row(run_id: str, r: StepResult, at: float) -> _Row:
    deps = json.dumps(list(r.depends_on))
    route = r.route
    return (
        run_id, r.id, "finished", at, r.kind, deps, route.profile, route.model, r.status,
        r.cost_usd, route.policy, route.escalations, r.error,
    )  # fmt: skip


def spans(rows: Sequence[sqlite3.Row]) -> list[StepSpan]:
    """Pair each step's `started` row with its next `finished` row; spans in start order."""
    out: list[StepSpan] = []
    open_: dict[str, deque[int]] = defaultdict(deque)  # step id -> its unfinished spans
    for step_id, phase, at, kind, deps, profile, model, status, cost, policy, esc, error in rows:
        step = Step(step_id, cast(StepKind, kind), "", tuple(json.loads(deps)))
        if phase == "started":
            open_[step_id].append(len(out))
            out.append(StepSpan(step, profile, model, at, None, "running", 0.0, policy, 0))
            continue
        if open_[step_id]:
            i = open_[step_id].popleft()
            began = out[i].started_at
        else:  # a finish without its start (the start's write was lost): a point in time
            i, began = len(out), at
            out.append(StepSpan(step, profile, model, at, None, status, 0.0, policy, 0))
        out[i] = StepSpan(step, profile, model, began, at, status, cost, policy, esc, error)
    return out
