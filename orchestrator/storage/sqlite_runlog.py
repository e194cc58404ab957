"""The run log in SQLite: runs.sqlite, on one aiosqlite connection shared by every run.

One connection, because concurrent runs in one process would otherwise fight each other for the
file's write lock; aiosqlite runs its statements on one worker thread, so the event loop never
waits on the disk. Transactions are explicit (the connection is in autocommit mode) and taken
one at a time under `_lock`, since any coroutine's statement would otherwise land inside another
coroutine's open transaction.

The statements, rows and group commit are shared with PostgreSQL (sql_runlog.py). WAL with
synchronous=NORMAL makes a commit survive a crash of the process (the ledger's purpose); only a
power loss can undo the last commits.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite

from .base import LeaseHolder
from .diagnose import translating, use_wal
from .liveness import HOST, lease_is_free
from .migrations import migrate
from .sql_runlog import SqlRunLog

BUSY_TIMEOUT_S = 30.0


class SqliteRunLog(SqlRunLog):
    """`RunLog` on runs.sqlite. Open with `SqliteRunLog.open`; `close` when done."""

    def __init__(
        self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.path = path
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> SqliteRunLog:
        """Open (creating or upgrading) the run log; StorageError if the file is unusable."""
        with translating(path):
            # isolation_level=None: no implicit BEGINs, every transaction here is explicit.
            db = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            await use_wal(db, path, BUSY_TIMEOUT_S)
            with translating(path):
                await db.execute("pragma synchronous = normal")
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, clock)

    async def close(self) -> None:
        """Wait for pending calls to be written, then close the connection."""
        await self.drain()  # its callers get its errors; close regardless
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
