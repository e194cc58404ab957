"""The response cache in PostgreSQL: the `responses` table, written behind like cache.sqlite
(cache_writes.py). `close` waits for the writer.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from .base import CacheStats
from .cache_writes import COLUMNS, SELECT_ANSWER, Row, WriteBehindCache
from .postgres_errors import Redactor
from .postgres_runlog import fetch_all, pg

_UPSERT = (
    f"insert into responses ({COLUMNS}) values ({', '.join(['%s'] * 11)}) "
    "on conflict (key) do update set "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(",")[1:])
)


class PostgresResponseCache(WriteBehindCache):
    """`ResponseCache` on the storage's pool (its table is made with the run log's)."""

    def __init__(self, pool: AsyncConnectionPool[Any], redactor: Redactor) -> None:
        super().__init__()
        self._pool = pool
        self._redactor = redactor

    async def _fetch(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return await fetch_all(self._pool, self._redactor, sql, args)

    async def check(self) -> None:
        # The table was made (and the server reached) when the storage opened; this round trip
        # tells a server that has gone since apart before the run's first call.
        await self._fetch("select 1 from responses limit 1")

    async def _lookup(self, key: str) -> tuple[Any, ...] | None:
        rows = await self._fetch(pg(SELECT_ANSWER), (key,))
        return rows[0] if rows else None

    async def _store(self, rows: list[Row]) -> None:
        with self._redactor.translating():
            async with self._pool.connection() as conn, conn.transaction():
                await conn.cursor().executemany(_UPSERT, rows)

    def _describe(self, exc: Exception) -> str:
        return getattr(exc, "message", None) or self._redactor.scrub(f"{exc}")

    async def stats(self) -> CacheStats:
        await self._drain()
        rows = await self._fetch(
            "select count(*), min(created_at), max(created_at), "
            "pg_total_relation_size('responses') from responses"
        )
        entries, oldest, newest, size = rows[0]
        return CacheStats(self._redactor.location, entries, size, oldest, newest)

    async def clear(self) -> int:
        await self._drain()  # else a batch being written could land after the delete
        with self._redactor.translating():
            async with self._pool.connection() as conn:
                cursor = await conn.execute("delete from responses")
                removed = cursor.rowcount
                # Give the space back, as clearing cache.sqlite does (outside a transaction:
                # pool connections are in autocommit mode).
                await conn.execute("vacuum responses")
        return max(removed, 0)

    async def close(self) -> None:
        await self._drain()
