"""The run log's schema, as the ordered history of changes that built it (simonw/llm's habit).

`MIGRATIONS` only ever grows at its end. Each function runs once per database, in order, inside
its own transaction, and the `_migrations` table records it by name (the function's name), so a
change is never renamed or edited once released: a new one is appended instead. The response
cache (cache.sqlite) keeps its own list the same way, in sqlite_cache.py.

A runs.sqlite written by the old `orchestrator/runlog.py` numbered its single migration with
`pragma user_version = 1` and has no `_migrations` table: it is adopted by recording
`m001_runs_and_calls` as applied, and the later migrations bring it up to date.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

import aiosqlite

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]


async def m001_runs_and_calls(db: aiosqlite.Connection) -> None:
    # Exactly the old runlog.py schema, so old and new databases share one upgrade path. "if not
    # exists": the old code did not create its tables atomically, and may have stopped halfway.
    await db.execute(
        """create table if not exists runs (
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
    await db.execute(
        """create table if not exists calls (
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
    await db.execute("create index if not exists calls_by_run on calls(run_id)")
    # What the old runlog.py reads: an older orchestrator then finds this schema current instead
    # of failing to create tables that exist (the columns added since all have defaults).
    await db.execute("pragma user_version = 1")


async def m002_call_steps(db: aiosqlite.Connection) -> None:
    """Calls record their step apart from their purpose, when they started, and estimated usage."""
    await db.execute("alter table calls add column step text")
    await db.execute("alter table calls add column started_at real not null default 0")
    await db.execute("alter table calls add column estimated integer not null default 0")
    # "solve:s1" -> ("solve", "s1"), "node:answer" -> ("node", "answer"). Every right-hand side
    # of an UPDATE sees the row as it was, so both columns are cut from the old purpose.
    await db.execute(
        """update calls set
             step = substr(purpose, instr(purpose, ':') + 1),
             purpose = substr(purpose, 1, instr(purpose, ':') - 1)
           where instr(purpose, ':') > 0"""
    )


async def m003_leases(db: aiosqlite.Connection) -> None:
    """Which process may run a run right now (see `RunLog.acquire_lease`)."""
    await db.execute(
        """create table leases (
            run_id text primary key,
            owner text not null,         -- the holder's random token
            pid integer not null,
            host text not null,          -- a pid means something only on its own host
            expires_at real not null
        )"""
    )


async def m004_run_hosts(db: aiosqlite.Connection) -> None:
    """Runs record their host, so a pid is only judged dead on the host that owns it."""
    await db.execute("alter table runs add column host text")
    await db.execute("create index runs_by_created on runs(created_at)")


async def m005_cached_calls(db: aiosqlite.Connection) -> None:
    """Calls answered from the response cache are recorded, at no cost, as cached."""
    await db.execute("alter table calls add column cached integer not null default 0")


async def m006_attempts_and_steps(db: aiosqlite.Connection) -> None:
    """Failed attempts (never billed) and when each step started and ended, for timelines."""
    await db.execute(
        """create table attempts (
            id integer primary key,
            run_id text not null references runs(run_id),
            profile text not null,
            model text not null,
            purpose text not null,
            step text,
            number integer not null,     -- which attempt, from 1
            attempts integer not null,   -- the most the call could make
            reason text not null,        -- status | timeout | connection | malformed | error
            status integer,              -- the HTTP status, if there was one
            detail text not null,
            started_at real not null,
            duration_s real not null,
            wait_s real,                 -- before the next attempt; null: none followed
            created_at real not null
        )"""
    )
    await db.execute("create index attempts_by_run on attempts(run_id)")
    # Append-only, a row as a step starts and one as it ends, so both are group-committed
    # inserts; a step that started and never ended (its process died) has only the first.
    await db.execute(
        """create table step_events (
            id integer primary key,
            run_id text not null references runs(run_id),
            step text not null,
            phase text not null,         -- started | finished
            at real not null,
            kind text not null,
            depends_on text not null,    -- a JSON list of step ids
            profile text not null,
            model text not null,
            status text not null,        -- running | done | failed
            cost_usd real not null,
            policy text not null,
            escalations integer not null,
            error text
        )"""
    )
    await db.execute("create index step_events_by_run on step_events(run_id)")


MIGRATIONS: list[Migration] = [
    m001_runs_and_calls,
    m002_call_steps,
    m003_leases,
    m004_run_hosts,
    m005_cached_calls,
    m006_attempts_and_steps,
]


async def migrate(
    db: aiosqlite.Connection, migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply every one of `migrations` (default: the run log's) this database lacks; the names
    applied, in order.

    `db` must be in autocommit mode (isolation_level=None): transactions here are explicit.
    Another process may be migrating the same file: each migration re-checks, inside its
    write transaction, that it is still needed.
    """
    runs = migrations is None  # only a run log can have been made by the old runlog.py
    migrations = MIGRATIONS if migrations is None else migrations
    applied = await _applied(db)
    if applied is None:
        await _transaction(db, _create_ledger if runs else _create_table)
        applied = await _applied(db) or set()
    done: list[str] = []
    for migration in migrations:
        if migration.__name__ not in applied and await _transaction(db, _once(migration)):
            done.append(migration.__name__)
    return done


async def _applied(db: aiosqlite.Connection) -> set[str] | None:
    """The names recorded as applied; None before `_migrations` exists.

    Reading the schema is also the cheap test that the file is a SQLite database at all.
    """
    tables = await db.execute_fetchall(
        "select 1 from sqlite_master where type = 'table' and name = '_migrations'"
    )
    if not list(tables):
        return None
    return {name for (name,) in await db.execute_fetchall("select name from _migrations")}


async def _create_table(db: aiosqlite.Connection) -> bool:
    await db.execute(
        "create table if not exists _migrations (name text primary key, applied_at real not null)"
    )
    return True


async def _create_ledger(db: aiosqlite.Connection) -> bool:
    await _create_table(db)
    ((version,),) = await db.execute_fetchall("pragma user_version")
    if version >= 1:  # made by the old runlog.py: its one migration is m001
        await _record(db, m001_runs_and_calls.__name__)
    return True


def _once(migration: Migration) -> Callable[[aiosqlite.Connection], Awaitable[bool]]:
    async def apply(db: aiosqlite.Connection) -> bool:
        name = migration.__name__
        if list(await db.execute_fetchall("select 1 from _migrations where name = ?", (name,))):
            return False  # another process applied it while we waited for the write lock
        await migration(db)
        await _record(db, name)
        return True

    return apply


async def _record(db: aiosqlite.Connection, name: str) -> None:
    await db.execute(
        "insert or ignore into _migrations (name, applied_at) values (?, ?)", (name, time.time())
    )


async def _transaction(
    db: aiosqlite.Connection, body: Callable[[aiosqlite.Connection], Awaitable[bool]]
) -> bool:
    # IMMEDIATE takes the write lock up front (waiting out the busy timeout), so two processes
    # opening one old database migrate it one after the other, never both.
    await db.execute("begin immediate")
    try:
        result = await body(db)
        await db.execute("commit")
    except BaseException:
        # SQLite may already have rolled back (it does on a full disk): nothing left to undo.
        with suppress(sqlite3.Error):
            await db.execute("rollback")
        raise
    return result
