"""The run log in PostgreSQL: the same tables, rows and semantics as sqlite_runlog.py.

Every statement goes through psycopg's async driver on a connection from the storage's pool, so
the event loop never waits on the server. Appends (calls, failed attempts, step starts and ends)
are group-committed as on SQLite: rows that arrive while a commit is in flight are written
together by the next one, each caller returning once its row is committed.

Leases are taken inside a transaction that locks the run's lease row (`for update`), after an
`insert ... on conflict do nothing` makes sure there is a row to lock: two processes asking at
once are serialised by the row lock, and exactly one gets it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import AsyncConnectionPool

from ..models.base import CallRecord
from ..models.retry import FailedAttempt
from ..steps import Route, Step, StepResult
from . import sqlite_spans as spans
from .base import RUN_STATUSES, LeaseHolder, RunRow, StepSpan
from .liveness import HOST, lease_is_free, live_status
from .postgres_errors import Redactor
from .sqlite_runlog import _CALL_COLUMNS, _call_record, _call_row, _settle

_Row = tuple[object, ...]
_Pending = tuple[str, _Row, "asyncio.Future[None]"]


def _pg(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (the shared statements have no literal ?)."""
    return sql.replace("?", "%s")


_INSERT_CALL = f"insert into calls ({_CALL_COLUMNS}) values ({', '.join(['%s'] * 16)})"
_INSERT_ATTEMPT = _pg(spans.INSERT_ATTEMPT)
_INSERT_STEP = _pg(spans.INSERT_STEP)
_SELECT_RUNS = (
    "select r.run_id, r.workflow, r.workflow_path, r.task, r.status, r.error, "
    "coalesce((select sum(cost_usd) from calls c where c.run_id = r.run_id), 0), "
    "r.created_at, r.updated_at, r.pid, r.host from runs r "
)


class PostgresRunLog:
    """`RunLog` on a PostgreSQL pool (the storage owns and closes the pool)."""

    max_batch = 10_000

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        redactor: Redactor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._redactor = redactor
        self._clock = clock
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Wait for pending rows to be written (the pool is closed by its owner)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncCursor[TupleRow]]:
        with self._redactor.translating():
            async with self._pool.connection() as conn, conn.transaction():
                yield conn.cursor(row_factory=tuple_row)

    async def _read(self, sql: str, args: Sequence[object]) -> list[TupleRow]:
        with self._redactor.translating():
            async with self._pool.connection() as conn:
                cursor = conn.cursor(row_factory=tuple_row)
                await cursor.execute(sql, args)
                return await cursor.fetchall()

    async def start_run(
        self, run_id: str, workflow: str, workflow_path: str | None, task: str
    ) -> None:
        now = self._clock()
        async with self._transaction() as cur:
            await cur.execute(
                """insert into runs (run_id, workflow, workflow_path, task, status, error, pid,
                                     host, created_at, updated_at)
                   values (%s, %s, %s, %s, 'running', null, %s, %s, %s, %s)
                   on conflict (run_id) do update set
                     status = 'running', error = null, pid = excluded.pid,
                     host = excluded.host, updated_at = excluded.updated_at""",
                (run_id, workflow, workflow_path, task, os.getpid(), HOST, now, now),
            )

    async def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
        async with self._transaction() as cur:
            await cur.execute(
                "update runs set status = %s, error = %s, pid = null, updated_at = %s "
                "where run_id = %s",
                (status, error, self._clock(), run_id),
            )

    async def add_call(self, run_id: str, call: CallRecord) -> None:
        await self._append(_INSERT_CALL, _call_row(run_id, call, self._clock()))

    async def add_attempt(self, run_id: str, attempt: FailedAttempt) -> None:
        await self._append(_INSERT_ATTEMPT, spans.attempt_row(run_id, attempt, self._clock()))

    async def step_started(self, run_id: str, step: Step, route: Route, at: float) -> None:
        await self._append(_INSERT_STEP, spans.started_row(run_id, step, route, at))

    async def step_finished(self, run_id: str, result: StepResult, at: float) -> None:
        await self._append(_INSERT_STEP, spans.finished_row(run_id, result, at))

    async def _append(self, sql: str, row: _Row) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((sql, row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller cancelled while waiting still gets its row recorded (it was billed).
        await asyncio.shield(done)

    async def _flush(self) -> None:
        """Commit pending rows in batches until none are left; wake each batch's callers."""
        while self._pending:
            batch: list[_Pending] = []
            try:
                async with self._transaction() as cur:
                    # Taken once a connection is ours: rows that came while we waited join.
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    for sql, rows in itertools.groupby(batch, key=lambda p: p[0]):
                        await cur.executemany(sql, [row for _, row, _ in rows])
            except Exception as exc:
                if not batch:
                    batch, self._pending = self._pending, []
                _settle(batch, exc)
                continue
            except BaseException:
                batch += self._pending
                self._pending = []
                _settle(batch, None, cancel=True)
                raise
            _settle(batch, None)

    async def calls(self, run_id: str) -> list[CallRecord]:
        rows = await self._read(
            "select profile, model, purpose, step, input_tokens, cached_input_tokens, "
            "output_tokens, reasoning_tokens, estimated, cost_usd, latency_s, finish_reason, "
            "started_at, cached from calls where run_id = %s order by id",
            (run_id,),
        )
        return [_call_record(row) for row in rows]  # type: ignore[arg-type]

    async def attempts(self, run_id: str) -> list[FailedAttempt]:
        rows = await self._read(_pg(spans.SELECT_ATTEMPTS), (run_id,))
        return [spans.attempt_record(row) for row in rows]  # type: ignore[arg-type]

    async def steps(self, run_id: str) -> list[StepSpan]:
        return spans.spans(await self._read(_pg(spans.SELECT_STEPS), (run_id,)))  # type: ignore[arg-type]

    async def count_cached_calls(self) -> int:
        rows = await self._read("select count(*) from calls where cached = 1", ())
        return int(rows[0][0])

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._runs("where r.run_id = %s", (run_id,))
        return rows[0] if rows else None

    async def recent_runs(self, limit: int) -> list[RunRow]:
        return await self._runs("order by r.created_at desc limit %s", (limit,))

    async def _runs(self, tail: str, args: tuple[object, ...]) -> list[RunRow]:
        rows = await self._read(_SELECT_RUNS + tail, args)
        return [
            RunRow(run_id, workflow, path, task, live_status(status, pid, host), error, cost, c, u)
            for run_id, workflow, path, task, status, error, cost, c, u, pid, host in rows
        ]

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> LeaseHolder | None:
        async with self._transaction() as cur:
            while True:
                now = self._clock()
                await cur.execute(
                    "insert into leases (run_id, owner, pid, host, expires_at) "
                    "values (%s, %s, %s, %s, %s) on conflict (run_id) do nothing returning 1",
                    (run_id, owner, os.getpid(), HOST, now + ttl_s),
                )
                if await cur.fetchone() is not None:
                    return None  # there was no lease: ours now
                await cur.execute(
                    "select owner, pid, host, expires_at from leases where run_id = %s for update",
                    (run_id,),
                )
                row = await cur.fetchone()
                if row is not None:
                    break
                # Released between the two statements: try to insert it again.
            holder = LeaseHolder(*row)
            now = self._clock()  # after the row lock: waiting for it may have taken a while
            if not lease_is_free(holder, owner, now):
                return holder
            await cur.execute(
                "update leases set owner = %s, pid = %s, host = %s, expires_at = %s "
                "where run_id = %s",
                (owner, os.getpid(), HOST, now + ttl_s, run_id),
            )
        return None

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        async with self._transaction() as cur:
            await cur.execute(
                "update leases set expires_at = %s where run_id = %s and owner = %s",
                (self._clock() + ttl_s, run_id, owner),
            )
            return cur.rowcount == 1

    async def release_lease(self, run_id: str, owner: str) -> None:
        async with self._transaction() as cur:
            await cur.execute(
                "delete from leases where run_id = %s and owner = %s", (run_id, owner)
            )
