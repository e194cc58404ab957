"""The run log in SQLite: runs.sqlite, on one aiosqlite connection shared by every run.

One connection, because concurrent runs in one process would otherwise fight each other for the
file's write lock; aiosqlite runs its statements on one worker thread, so the event loop never
waits on the disk. Every transaction is one function run on that thread (sqlite_thread.py), so
no coroutine's statement can land inside another's open transaction, and none is left open by a
cancelled caller; the connection is in autocommit mode, each BEGIN explicit.

The statements, rows and group commit are shared with PostgreSQL (sql_runlog.py). WAL with
synchronous=NORMAL makes a commit survive a crash of the process (the ledger's purpose); only a
power loss can undo the last commits.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from .base import LeaseHolder
from .diagnose import translating, use_wal
from .group_commit import Writer
from .liveness import HOST, lease_is_free
from .migrations import migrate
from .sql_runlog import SqlRunLog
from .sqlite_thread import in_transaction, on_thread, writing

BUSY_TIMEOUT_S = 30.0
T = TypeVar("T")


class SqliteRunLog(SqlRunLog):
    """`RunLog` on runs.sqlite. Open with `SqliteRunLog.open`; `close` when done."""

    def __init__(
        self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self.path = path
        self._db = db

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
    async def _committing(self) -> AsyncIterator[Writer]:
        with translating(self.path):
            yield writing(self._db)

    async def _read(self, sql: str, args: tuple[object, ...]) -> list[sqlite3.Row]:
        with translating(self.path):
            return list(await self._db.execute_fetchall(sql, args))

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> LeaseHolder | None:
        def acquire(conn: sqlite3.Connection) -> LeaseHolder | None:
            now = self._clock()  # after BEGIN IMMEDIATE: the lock may have taken a while
            rows = conn.execute(
                "select owner, pid, host, expires_at from leases where run_id = ?", (run_id,)
            ).fetchall()
            if rows:
                holder = LeaseHolder(*rows[0])
                if not lease_is_free(holder, owner, now):
                    return holder
            conn.execute(
                """insert into leases (run_id, owner, pid, host, expires_at) values (?, ?, ?, ?, ?)
                   on conflict(run_id) do update set owner = excluded.owner,
                     pid = excluded.pid, host = excluded.host, expires_at = excluded.expires_at""",
                (run_id, owner, os.getpid(), HOST, now + ttl_s),
            )
            return None

        return await self._in_transaction(acquire)

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        def renew(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "update leases set expires_at = ? where run_id = ? and owner = ?",
                (self._clock() + ttl_s, run_id, owner),
            )
            return cursor.rowcount == 1

        return await self._in_transaction(renew)

    async def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction on the connection's thread; StorageError if the file fails."""
        with translating(self.path):
            return await on_thread(self._db, functools.partial(in_transaction, work=work))
