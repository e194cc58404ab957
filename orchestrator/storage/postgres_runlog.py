"""The run log in PostgreSQL: the same tables, rows and semantics as sqlite_runlog.py.

Every statement goes through psycopg's async driver on a connection from the storage's pool, so
the event loop never waits on the server. The statements, rows and group commit are SQLite's
(sql_runlog.py), with psycopg's `%s` placeholders.

Leases are taken inside a transaction that locks the run's lease row (`for update`), after an
`insert ... on conflict do nothing` makes sure there is a row to lock: two processes asking at
once are serialised by the row lock, and exactly one gets it.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import AsyncConnectionPool

from .base import LeaseHolder
from .group_commit import Writer, executing
from .liveness import HOST, lease_is_free
from .postgres_errors import Redactor
from .sql_runlog import SqlRunLog


@functools.cache
def pg(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (the shared statements have no literal ?)."""
    return sql.replace("?", "%s")


async def fetch_all(
    pool: AsyncConnectionPool[Any], redactor: Redactor, sql: str, args: tuple[object, ...] = ()
) -> list[TupleRow]:
    """The rows of one query, on a connection from `pool`; failures as StorageError."""
    with redactor.translating():
        async with pool.connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(sql, args)
            return await cursor.fetchall()


class PostgresRunLog(SqlRunLog):
    """`RunLog` on a PostgreSQL pool (the storage owns and closes the pool)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        redactor: Redactor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self._pool = pool
        self._redactor = redactor

    async def close(self) -> None:
        """Wait for pending rows to be written (the pool is closed by its owner)."""
        await self.drain()

    def _sql(self, statement: str) -> str:
        return pg(statement)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncCursor[TupleRow]]:
        with self._redactor.translating():
            async with self._pool.connection() as conn, conn.transaction():
                yield conn.cursor(row_factory=tuple_row)

    @asynccontextmanager
    async def _committing(self) -> AsyncIterator[Writer]:
        async with self._transaction() as cur:
            yield executing(cur)

    async def _read(self, sql: str, args: tuple[object, ...]) -> list[TupleRow]:
        return await fetch_all(self._pool, self._redactor, sql, args)

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
