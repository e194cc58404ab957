"""The run log in SQLite: runs.sqlite, on one aiosqlite connection shared by every run.

One connection, because concurrent runs in one process would otherwise fight each other for the
file's write lock; aiosqlite runs its statements on one worker thread, so the event loop never
waits on the disk. Transactions are explicit (the connection is in autocommit mode) and taken
one at a time under `_lock`, since any coroutine's statement would otherwise land inside another
coroutine's open transaction.

`add_call` (and the other appends: failed attempts, step starts and ends) is group-committed:
rows that arrive while a commit is in flight are written together
by the next one, so N concurrent runs pay for about one commit per batch instead of N. WAL with
synchronous=NORMAL makes a commit survive a crash of the process (the ledger's purpose); only a
power loss can undo the last commits.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, cast

import aiosqlite

from ..models.base import CallPurpose, CallRecord, TokenUsage
from ..models.retry import FailedAttempt
from ..steps import Route, Step, StepResult
from . import sqlite_spans as spans
from .base import RUN_STATUSES, LeaseHolder, RunRow, StepSpan
from .diagnose import translating
from .liveness import HOST, lease_is_free, live_status
from .migrations import migrate

BUSY_TIMEOUT_S = 30.0

_CALL_COLUMNS = (
    "run_id, profile, model, purpose, step, input_tokens, cached_input_tokens, output_tokens, "
    "reasoning_tokens, estimated, cost_usd, latency_s, finish_reason, started_at, cached, "
    "created_at"
)
_INSERT_CALL = f"insert into calls ({_CALL_COLUMNS}) values ({', '.join('?' * 16)})"
_SELECT_RUNS = (
    "select r.run_id, r.workflow, r.workflow_path, r.task, r.status, r.error, "
    "coalesce((select sum(cost_usd) from calls c where c.run_id = r.run_id), 0), "
    "r.created_at, r.updated_at, r.pid, r.host from runs r "
)

_Row = tuple[object, ...]
_Pending = tuple[str, _Row, "asyncio.Future[None]"]  # statement, row, its caller's wake-up


class SqliteRunLog:
    """`RunLog` on runs.sqlite. Open with `SqliteRunLog.open`; `close` when done."""

    max_batch = 10_000
    """Most calls one group commit writes (1 turns group commit off, for measurements)."""

    def __init__(
        self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._db = db
        self._clock = clock
        self._lock = asyncio.Lock()
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> SqliteRunLog:
        """Open (creating or upgrading) the run log; StorageError if the file is unusable."""
        with translating(path):
            # isolation_level=None: no implicit BEGINs, every transaction here is explicit.
            db = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            with translating(path):
                await db.execute("pragma journal_mode = wal")
                await db.execute("pragma synchronous = normal")
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, clock)

    async def close(self) -> None:
        """Wait for pending calls to be written, then close the connection."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})  # its callers get its errors; close regardless
        await self._db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction, alone on the connection; StorageError if the file fails."""
        async with self._lock:
            with translating(self.path):
                # IMMEDIATE: take the file's write lock now (waiting up to the busy timeout for
                # other processes) rather than fail when a read later turns into a write.
                await self._begin()
                try:
                    yield self._db
                    await self._db.execute("commit")
                except BaseException:
                    # SQLite has already rolled back after some errors (a full disk).
                    with suppress(sqlite3.Error):
                        await self._db.execute("rollback")
                    raise

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE, leaving no transaction open if the caller is cancelled meanwhile.

        The statement runs on the connection's thread whether or not anyone awaits it; a
        caller cancelled while it waits would leave the shared connection inside a transaction
        nobody ends, and every later write would fail ("cannot start a transaction within a
        transaction"). So a cancelled BEGIN is rolled back before the lock is let go.
        """
        begin = asyncio.ensure_future(self._db.execute("begin immediate"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            await asyncio.shield(self._undo(begin))
            raise

    async def _undo(self, begin: asyncio.Future[Any]) -> None:
        with suppress(Exception):
            await begin
            await self._db.execute("rollback")

    async def _read(self, sql: str, args: tuple[object, ...]) -> list[sqlite3.Row]:
        # Under the lock too: a read between another coroutine's BEGIN and COMMIT on this shared
        # connection would see rows that may still be rolled back.
        async with self._lock:
            with translating(self.path):
                return list(await self._db.execute_fetchall(sql, args))

    async def start_run(
        self, run_id: str, workflow: str, workflow_path: str | None, task: str
    ) -> None:
        now = self._clock()
        async with self._transaction() as db:
            await db.execute(
                """insert into runs (run_id, workflow, workflow_path, task, status, error, pid,
                                     host, created_at, updated_at)
                   values (?, ?, ?, ?, 'running', null, ?, ?, ?, ?)
                   on conflict(run_id) do update set
                     status = 'running', error = null, pid = excluded.pid,
                     host = excluded.host, updated_at = excluded.updated_at""",
                (run_id, workflow, workflow_path, task, os.getpid(), HOST, now, now),
            )

    async def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
        async with self._transaction() as db:
            await db.execute(
                "update runs set status = ?, error = ?, pid = null, updated_at = ? "
                "where run_id = ?",
                (status, error, self._clock(), run_id),
            )

    async def add_call(self, run_id: str, call: CallRecord) -> None:
        """Append a billed call; returns once the transaction holding it has committed."""
        await self._append(_INSERT_CALL, _call_row(run_id, call, self._clock()))

    async def add_attempt(self, run_id: str, attempt: FailedAttempt) -> None:
        await self._append(spans.INSERT_ATTEMPT, spans.attempt_row(run_id, attempt, self._clock()))

    async def step_started(self, run_id: str, step: Step, route: Route, at: float) -> None:
        await self._append(spans.INSERT_STEP, spans.started_row(run_id, step, route, at))

    async def step_finished(self, run_id: str, result: StepResult, at: float) -> None:
        await self._append(spans.INSERT_STEP, spans.finished_row(run_id, result, at))

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
                async with self._transaction() as db:
                    # Taken once the write lock is ours: rows that came while we waited join.
                    batch = self._take_batch()
                    for sql, rows in itertools.groupby(batch, key=lambda p: p[0]):
                        await db.executemany(sql, [row for _, row, _ in rows])
            except Exception as exc:
                # A failed BEGIN fails the callers waiting for it rather than retrying forever.
                _settle(batch or self._take_batch(), exc)
                continue
            except BaseException:
                # Cancelled (the loop is shutting down): no one is left to write the rest.
                batch += self._pending
                self._pending = []
                _settle(batch, None, cancel=True)
                raise
            _settle(batch, None)

    def _take_batch(self) -> list[_Pending]:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        return batch

    async def calls(self, run_id: str) -> list[CallRecord]:
        rows = await self._read(
            "select profile, model, purpose, step, input_tokens, cached_input_tokens, "
            "output_tokens, reasoning_tokens, estimated, cost_usd, latency_s, finish_reason, "
            "started_at, cached from calls where run_id = ? order by id",
            (run_id,),
        )
        return [_call_record(row) for row in rows]

    async def attempts(self, run_id: str) -> list[FailedAttempt]:
        rows = await self._read(spans.SELECT_ATTEMPTS, (run_id,))
        return [spans.attempt_record(row) for row in rows]

    async def steps(self, run_id: str) -> list[StepSpan]:
        return spans.spans(await self._read(spans.SELECT_STEPS, (run_id,)))

    async def count_cached_calls(self) -> int:
        rows = await self._read("select count(*) from calls where cached = 1", ())
        return int(rows[0][0])

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._runs("where r.run_id = ?", (run_id,))
        return rows[0] if rows else None

    async def recent_runs(self, limit: int) -> list[RunRow]:
        return await self._runs("order by r.created_at desc limit ?", (limit,))

    async def _runs(self, tail: str, args: tuple[object, ...]) -> list[RunRow]:
        rows = await self._read(_SELECT_RUNS + tail, args)
        return [
            RunRow(run_id, workflow, path, task, live_status(status, pid, host), error, cost, c, u)
            for run_id, workflow, path, task, status, error, cost, c, u, pid, host in rows
        ]

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> LeaseHolder | None:
        async with self._transaction() as db:
            now = self._clock()  # after BEGIN IMMEDIATE: the lock may have taken a while
            rows = list(
                await db.execute_fetchall(
                    "select owner, pid, host, expires_at from leases where run_id = ?",
                    (run_id,),
                )
            )
            if rows:
                holder = LeaseHolder(*rows[0])
                if not lease_is_free(holder, owner, now):
                    return holder
            await db.execute(
                """insert into leases (run_id, owner, pid, host, expires_at) values (?, ?, ?, ?, ?)
                   on conflict(run_id) do update set owner = excluded.owner,
                     pid = excluded.pid, host = excluded.host, expires_at = excluded.expires_at""",
                (run_id, owner, os.getpid(), HOST, now + ttl_s),
            )
        return None

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute(
                "update leases set expires_at = ? where run_id = ? and owner = ?",
                (self._clock() + ttl_s, run_id, owner),
            )
            return cursor.rowcount == 1

    async def release_lease(self, run_id: str, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("delete from leases where run_id = ? and owner = ?", (run_id, owner))


def _settle(
    batch: list[_Pending],
    error: Exception | None,
    cancel: bool = False,
) -> None:
    for _, _, done in batch:
        if done.done():
            continue
        if cancel:
            done.cancel()
        elif error is not None:
            done.set_exception(error)
        else:
            done.set_result(None)


def _call_row(run_id: str, call: CallRecord, now: float) -> _Row:
    u = call.usage
    return (
        run_id,
        call.profile,
        call.model,
        call.purpose,
        call.step,
        u.input_tokens,
        u.cached_input_tokens,
        u.output_tokens,
        u.reasoning_tokens,
        int(u.estimated),
        call.cost_usd,
        call.latency_s,
        call.finish_reason,
        call.started_at,
        int(call.cached),
        now,
    )


def _call_record(row: sqlite3.Row) -> CallRecord:
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
