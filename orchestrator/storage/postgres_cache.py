"""The response cache in PostgreSQL: the `responses` table, written behind like cache.sqlite.

`put` returns at once (see `ResponseCache.put`): answers waiting to be written are kept in
memory, where `get` finds them, and one writer task upserts them in batches. A write that fails
is logged once and dropped; the answer is simply not cached. `close` waits for the writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from ..models.base import TokenUsage
from .base import CachedAnswer, CacheStats
from .postgres_errors import Redactor
from .sqlite_cache import _COLUMNS, _row

log = logging.getLogger(__name__)

_UPSERT = (
    f"insert into responses ({_COLUMNS}) values ({', '.join(['%s'] * 11)}) "
    "on conflict (key) do update set "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _COLUMNS.split(",")[1:])
)


class PostgresResponseCache:
    """`ResponseCache` on the storage's pool (its table is made with the run log's)."""

    def __init__(self, pool: AsyncConnectionPool[Any], redactor: Redactor) -> None:
        self._pool = pool
        self._redactor = redactor
        self._pending: dict[str, tuple[CachedAnswer, float]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._warned = False

    async def _fetch(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._redactor.translating():
            async with self._pool.connection() as conn:
                cursor = conn.cursor(row_factory=tuple_row)
                await cursor.execute(sql, args)
                return await cursor.fetchall()

    async def check(self) -> None:
        # The table was made (and the server reached) when the storage opened; this round trip
        # tells a server that has gone since apart before the run's first call.
        await self._fetch("select 1 from responses limit 1")

    async def get(self, key: str) -> CachedAnswer | None:
        waiting = self._pending.get(key)
        if waiting is not None:
            return waiting[0]
        rows = await self._fetch(
            "select content, trace, finish_reason, input_tokens, cached_input_tokens, "
            "output_tokens, reasoning_tokens, estimated, latency_s from responses where key = %s",
            (key,),
        )
        if not rows:
            return None
        content, trace, finish, i, c, o, r, estimated, latency = rows[0]
        return CachedAnswer(
            content, trace, finish, TokenUsage(i, c, o, r, bool(estimated)), latency
        )

    def put(self, key: str, answer: CachedAnswer) -> None:
        self._pending[key] = (answer, time.time())
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            batch = dict(self._pending)
            try:
                with self._redactor.translating():
                    async with self._pool.connection() as conn, conn.transaction():
                        rows = [_row(k, *v) for k, v in batch.items()]
                        await conn.cursor().executemany(_UPSERT, rows)
            except Exception as exc:
                self._report(exc)
            for key, entry in batch.items():
                if self._pending.get(key) is entry:  # not put again while being written
                    del self._pending[key]

    def _report(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            detail = getattr(exc, "message", None) or self._redactor.scrub(f"{exc}")
            log.warning("response cache: answers could not be stored: %s", detail)

    async def _drain(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

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
