"""What the SQLite and PostgreSQL run logs share: their statements, rows and group commit.

Both keep the same tables, so everything but transactions, reads and leases is written once here.
A backend gives `_committing()` (group_commit.py), `_read(sql, args)`, `_sql(statement)` for
its placeholder style (the statements here use `?`), and takes and renews leases its own way.

Every write but a lease's (a run started or finished, billed calls, failed attempts, step starts
and ends, a lease let go) is group-committed: each caller returns once its row is committed.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..models.base import CallPurpose, CallRecord, TokenUsage
from ..models.retry import FailedAttempt
from ..steps import Route, Step, StepResult
from . import sqlite_spans as spans
from .base import RUN_STATUSES, RunRow, StepSpan
from .group_commit import GroupCommit, Row
from .liveness import HOST, live_status

CALL_COLUMNS = (
    "run_id, profile, model, purpose, step, input_tokens, cached_input_tokens, output_tokens, "
    "reasoning_tokens, estimated, cost_usd, latency_s, finish_reason, started_at, cached, "
    "created_at"
)
INSERT_CALL = f"insert into calls ({CALL_COLUMNS}) values ({', '.join('?' * 16)})"
SELECT_CALLS = (
    "select profile, model, purpose, step, input_tokens, cached_input_tokens, "
    "output_tokens, reasoning_tokens, estimated, cost_usd, latency_s, finish_reason, "
    "started_at, cached from calls where run_id = ? order by id"
)
SELECT_RUNS = (
    "select r.run_id, r.workflow, r.workflow_path, r.task, r.status, r.error, "
    "coalesce((select sum(cost_usd) from calls c where c.run_id = r.run_id), 0), "
    "r.created_at, r.updated_at, r.pid, r.host from runs r "
)
START_RUN = """insert into runs (run_id, workflow, workflow_path, task, status, error, pid,
                                 host, created_at, updated_at)
               values (?, ?, ?, ?, 'running', null, ?, ?, ?, ?)
               on conflict (run_id) do update set
                 status = 'running', error = null, pid = excluded.pid,
                 host = excluded.host, updated_at = excluded.updated_at"""
FINISH_RUN = "update runs set status = ?, error = ?, pid = null, updated_at = ? where run_id = ?"
RELEASE_LEASE = "delete from leases where run_id = ? and owner = ?"


class SqlRunLog(GroupCommit):
    """The part of `RunLog` that is the same SQL on every backend."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock

    @abc.abstractmethod
    async def _read(self, sql: str, args: tuple[object, ...]) -> Sequence[Sequence[Any]]:
        """The rows of one query."""

    def _sql(self, statement: str) -> str:
        """`statement` (written with `?` placeholders) in the backend's own style."""
        return statement

    async def start_run(
        self, run_id: str, workflow: str, workflow_path: str | None, task: str
    ) -> None:
        now = self._clock()
        row = (run_id, workflow, workflow_path, task, os.getpid(), HOST, now, now)
        await self._append(self._sql(START_RUN), [row])

    async def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
        await self._append(self._sql(FINISH_RUN), [(status, error, self._clock(), run_id)])

    async def release_lease(self, run_id: str, owner: str) -> None:
        await self._append(self._sql(RELEASE_LEASE), [(run_id, owner)])

    async def add_call(self, run_id: str, call: CallRecord) -> None:
        """Append a billed call; returns once the transaction holding it has committed."""
        await self._append(self._sql(INSERT_CALL), [call_row(run_id, call, self._clock())])

    async def add_attempt(self, run_id: str, attempt: FailedAttempt) -> None:
        row = spans.attempt_row(run_id, attempt, self._clock())
        await self._append(self._sql(spans.INSERT_ATTEMPT), [row])

    async def step_started(self, run_id: str, step: Step, route: Route, at: float) -> None:
        row = spans.started_row(run_id, step, route, at)
        await self._append(self._sql(spans.INSERT_STEP), [row])

    async def step_finished(self, run_id: str, result: StepResult, at: float) -> None:
        row = spans.finished_row(run_id, result, at)
        await self._append(self._sql(spans.INSERT_STEP), [row])

    async def calls(self, run_id: str) -> list[CallRecord]:
        return [call_record(row) for row in await self._read(self._sql(SELECT_CALLS), (run_id,))]

    async def attempts(self, run_id: str) -> list[FailedAttempt]:
        rows = await self._read(self._sql(spans.SELECT_ATTEMPTS), (run_id,))
        return [spans.attempt_record(row) for row in rows]  # type: ignore[arg-type]

    async def steps(self, run_id: str) -> list[StepSpan]:
        rows = await self._read(self._sql(spans.SELECT_STEPS), (run_id,))
        return spans.spans(rows)  # type: ignore[arg-type]

    async def count_cached_calls(self) -> int:
        rows = await self._read("select count(*) from calls where cached = 1", ())
        return int(rows[0][0])

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._runs("where r.run_id = ?", (run_id,))
        return rows[0] if rows else None

    async def recent_runs(self, limit: int) -> list[RunRow]:
        return await self._runs("order by r.created_at desc limit ?", (limit,))

    async def _runs(self, tail: str, args: tuple[object, ...]) -> list[RunRow]:
        rows = await self._read(self._sql(SELECT_RUNS + tail), args)
        return [
            RunRow(run_id, workflow, path, task, live_status(status, pid, host), error, cost, c, u)
            for run_id, workflow, path, task, status, error, cost, c, u, pid, host in rows
        ]


def call_row(run_id: str, call: CallRecord, now: float) -> Row:
    u = call.usage
    return (
        run_id, call.profile, call.model, call.purpose, call.step, u.input_tokens,
        u.cached_input_tokens, u.output_tokens, u.reasoning_tokens, int(u.estimated),
        call.cost_usd, call.latency_s, call.finish_reason, call.started_at, int(call.cached), now,
    )  # fmt: skip


def call_record(row: Sequence[Any]) -> CallRecord:
    profile, model, purpose, step, i, c, o, r, estimated, cost, latency, finish, started, cached = (
        row
    )
    return CallRecord(
        profile=profile,
        model=model,
        purpose=cast(CallPurpose, purpose),
        step=step,
        usage=TokenUsage(i, c, o, r, bool(estimated)),
        cost_usd=cost,
        latency_s=latency,
        finish_reason=finish,
        started_at=started,
        cached=bool(cached),
    )
