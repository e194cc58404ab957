"""The run log: one SQLite file under ORCHESTRATOR_HOME recording every run and every billed call.

It is the ledger behind a run's cost: calls are written the moment they are billed, so a run
that failed, was killed or was resumed still reports everything it paid for. Checkpoints (the
graph's state) live in LangGraph's own SQLite file beside it. No API key is ever written here.

The schema evolves by appending to `MIGRATIONS` (simonw/llm's habit): each function runs once.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .models.base import CallRecord, TokenUsage

RUNLOG_FILE = "runs.sqlite"


def _m001_runs_and_calls(db: sqlite3.Connection) -> None:
    db.execute(
        """create table runs (
            run_id text primary key,
            workflow text not null,      -- the spec's name
            workflow_path text,          -- where to load it from on resume
            task text not null,
            status text not null,        -- running | completed | failed | budget_exceeded | ...
            error text,
            pid integer,                 -- the process running it, to tell killed runs apart
            created_at real not null,
            updated_at real not null
        )"""
    )
    db.execute(
        """create table calls (
            id integer primary key,
            run_id text not null references runs(run_id),
            profile text not null,
            model text not null,
            purpose text not null,
            input_tokens integer not null,
            cached_input_tokens integer not null,
            output_tokens integer not null,
            reasoning_tokens integer not null,
            cost_usd real not null,
            latency_s real not null,
            finish_reason text,
            created_at real not null
        )"""
    )
    db.execute("create index calls_by_run on calls(run_id)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_runs_and_calls]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    workflow: str
    workflow_path: str | None
    task: str
    status: str
    error: str | None
    cost_usd: float
    created_at: float
    updated_at: float


class RunLog:
    """Small synchronous SQLite access; each write is its own committed transaction."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / RUNLOG_FILE
        with self._db() as db:
            done = db.execute("pragma user_version").fetchone()[0]
            for number, migrate in enumerate(MIGRATIONS[done:], start=done + 1):
                migrate(db)
                db.execute(f"pragma user_version = {number}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def start(self, run_id: str, workflow: str, workflow_path: str | None, task: str) -> None:
        now = time.time()
        with self._db() as db:
            db.execute(
                """insert into runs values (?, ?, ?, ?, 'running', null, ?, ?, ?)
                   on conflict(run_id) do update set
                     status = 'running', error = null, pid = excluded.pid,
                     updated_at = excluded.updated_at""",
                (run_id, workflow, workflow_path, task, os.getpid(), now, now),
            )

    def finish(self, run_id: str, status: str, error: str | None) -> None:
        with self._db() as db:
            db.execute(
                "update runs set status = ?, error = ?, pid = null, updated_at = ? "
                "where run_id = ?",
                (status, error, time.time(), run_id),
            )

    def add_call(self, run_id: str, call: CallRecord) -> None:
        u = call.usage
        with self._db() as db:
            db.execute(
                "insert into calls (run_id, profile, model, purpose, input_tokens, "
                "cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, latency_s, "
                "finish_reason, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    call.profile,
                    call.model,
                    call.purpose,
                    u.input_tokens,
                    u.cached_input_tokens,
                    u.output_tokens,
                    u.reasoning_tokens,
                    call.cost_usd,
                    call.latency_s,
                    call.finish_reason,
                    time.time(),
                ),
            )

    def calls(self, run_id: str) -> list[CallRecord]:
        with self._db() as db:
            rows = db.execute(
                "select profile, model, purpose, input_tokens, cached_input_tokens, "
                "output_tokens, reasoning_tokens, cost_usd, latency_s, finish_reason "
                "from calls where run_id = ? order by id",
                (run_id,),
            ).fetchall()
        return [
            CallRecord(p, m, purpose, TokenUsage(i, c, o, r), cost, latency, finish)
            for p, m, purpose, i, c, o, r, cost, latency, finish in rows
        ]

    def get(self, run_id: str) -> RunRow | None:
        rows = self._select("where r.run_id = ?", (run_id,))
        return rows[0] if rows else None

    def recent(self, limit: int = 50) -> list[RunRow]:
        return self._select("order by r.created_at desc limit ?", (limit,))

    def _select(self, tail: str, args: tuple[object, ...]) -> list[RunRow]:
        with self._db() as db:
            rows = db.execute(
                "select r.run_id, r.workflow, r.workflow_path, r.task, r.status, r.error, "
                "coalesce((select sum(cost_usd) from calls c where c.run_id = r.run_id), 0), "
                "r.created_at, r.updated_at, r.pid from runs r " + tail,
                args,
            ).fetchall()
        return [
            RunRow(run_id, workflow, path, task, _live_status(status, pid), error, cost, c, u)
            for run_id, workflow, path, task, status, error, cost, c, u, pid in rows
        ]


def _live_status(status: str, pid: int | None) -> str:
    """A run still marked running whose process is gone was killed: call it interrupted."""
    if status != "running" or pid is None:
        return status
    if pid == os.getpid():
        return status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        pass  # alive, but someone else's
    return status
