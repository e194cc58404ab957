"""The PostgreSQL schema: the run log's and the response cache's tables, as named migrations.

The same history as the SQLite files' (migrations.py, sqlite_cache.py), under the same names
where a change corresponds, recorded by name in `_migrations`. Everything lives in one database,
so the run log's list and the cache's are applied together, in that order.

Two processes opening one fresh database migrate one after the other: the opener holds a
session advisory lock (`schema_lock`) for the whole pass, so the second finds everything
recorded and applies nothing. LangGraph's checkpoint tables are made under the same lock (its
`setup()` is not safe to run twice at once either).

Tables have no foreign keys, as in SQLite (where they are declared but not enforced): the run
log never refuses a billed call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from ..errors import StorageError

PgMigration = Callable[[AsyncConnection[Any]], Awaitable[None]]

# An arbitrary constant naming "orchestrator's schema" among the database's advisory locks.
LOCK_KEY = 0x6F72636873  # "orchs"
LOCK_WAIT_S = 120.0
LOCK_POLL_S = 0.05


async def m001_runs_and_calls(db: AsyncConnection[Any]) -> None:
    await db.execute(
        """create table runs (
            run_id text primary key,
            workflow text not null,
            workflow_path text,
            task text not null,
            status text not null,
            error text,
            pid integer,
            created_at double precision not null,
            updated_at double precision not null
        )"""
    )
    await db.execute(
        """create table calls (
            id bigint generated always as identity primary key,
            run_id text not null,
            profile text not null,
            model text not null,
            purpose text not null,
            input_tokens bigint not null,
            cached_input_tokens bigint not null,
            output_tokens bigint not null,
            reasoning_tokens bigint not null,
            cost_usd double precision not null,
            latency_s double precision not null,
            finish_reason text,
            created_at double precision not null
        )"""
    )
    await db.execute("create index calls_by_run on calls(run_id)")


async def m002_call_steps(db: AsyncConnection[Any]) -> None:
    await db.execute("alter table calls add column step text")
    await db.execute("alter table calls add column started_at double precision not null default 0")
    await db.execute("alter table calls add column estimated integer not null default 0")


async def m003_leases(db: AsyncConnection[Any]) -> None:
    await db.execute(
        """create table leases (
            run_id text primary key,
            owner text not null,
            pid integer not null,
            host text not null,
            expires_at double precision not null
        )"""
    )


async def m004_run_hosts(db: AsyncConnection[Any]) -> None:
    await db.execute("alter table runs add column host text")
    await db.execute("create index runs_by_created on runs(created_at)")


async def m005_cached_calls(db: AsyncConnection[Any]) -> None:
    await db.execute("alter table calls add column cached integer not null default 0")


async def m006_attempts_and_steps(db: AsyncConnection[Any]) -> None:
    await db.execute(
        """create table attempts (
            id bigint generated always as identity primary key,
            run_id text not null,
            profile text not null,
            model text not null,
            purpose text not null,
            step text,
            number integer not null,
            attempts integer not null,
            reason text not null,
            status integer,
            detail text not null,
            started_at double precision not null,
            duration_s double precision not null,
            wait_s double precision,
            created_at double precision not null
        )"""
    )
    await db.execute("create index attempts_by_run on attempts(run_id)")
    await db.execute(
        """create table step_events (
            id bigint generated always as identity primary key,
            run_id text not null,
            step text not null,
            phase text not null,
            at double precision not null,
            kind text not null,
            depends_on text not null,
            profile text not null,
            model text not null,
            status text not null,
            cost_usd double precision not null,
            policy text not null,
            escalations integer not null,
            error text
        )"""
    )
    await db.execute("create index step_events_by_run on step_events(run_id)")


async def m001_responses(db: AsyncConnection[Any]) -> None:
    """The response cache (cache.sqlite's `m001_responses`)."""
    await db.execute(
        """create table responses (
            key text primary key,
            content text not null,
            trace text,
            finish_reason text not null,
            input_tokens bigint not null,
            cached_input_tokens bigint not null,
            output_tokens bigint not null,
            reasoning_tokens bigint not null,
            estimated integer not null,
            latency_s double precision not null,
            created_at double precision not null
        )"""
    )
    await db.execute("create index responses_by_created on responses(created_at)")


MIGRATIONS: list[PgMigration] = [
    m001_runs_and_calls,
    m002_call_steps,
    m003_leases,
    m004_run_hosts,
    m005_cached_calls,
    m006_attempts_and_steps,
    m001_responses,
]


@asynccontextmanager
async def schema_lock(db: AsyncConnection[Any], location: str) -> AsyncIterator[None]:
    """Hold the schema's advisory lock on `db` (autocommit) for the duration.

    Taken with pg_try_advisory_lock, polling: a process blocked in pg_advisory_lock would sit
    in an open transaction, which LangGraph's CREATE INDEX CONCURRENTLY (run by the holder)
    waits for, and the server would report a deadlock.
    """
    cursor = db.cursor(row_factory=tuple_row)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        await cursor.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,))
        row = await cursor.fetchone()
        if row is not None and row[0]:
            break
        if time.monotonic() > deadline:
            raise StorageError(
                f"PostgreSQL at {location}: another process has held orchestrator's schema lock "
                f"for over {LOCK_WAIT_S:g} s (a migration that hangs?): check the server's "
                "sessions (pg_locks), then retry",
                path=location,
            )
        await asyncio.sleep(LOCK_POLL_S)
    try:
        yield
    finally:
        await db.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))


async def migrate(
    db: AsyncConnection[Any], migrations: list[PgMigration] | None = None
) -> list[str]:
    """Apply every migration the database lacks, each in its own transaction; the names applied.

    Call it holding `schema_lock` on `db` (an autocommit connection).
    """
    await db.execute(
        "create table if not exists _migrations "
        "(name text primary key, applied_at double precision not null)"
    )
    cursor = db.cursor(row_factory=tuple_row)
    await cursor.execute("select name from _migrations")
    applied = {row[0] for row in await cursor.fetchall()}
    done: list[str] = []
    for migration in MIGRATIONS if migrations is None else migrations:
        name = migration.__name__
        if name in applied:
            continue
        async with db.transaction():
            await migration(db)
            await db.execute(
                "insert into _migrations (name, applied_at) values (%s, %s)", (name, time.time())
            )
        done.append(name)
    return done
