"""The response cache in SQLite: cache.sqlite, on one aiosqlite connection, opened on first use.

A file of its own, apart from the run log: clearing it, deleting it or finding it corrupt never
touches run history, and runs that do not cache never open it. aiosqlite runs every statement
on its worker thread, so the event loop never waits on the disk.

Writes are behind, as on PostgreSQL (cache_writes.py). `close` waits for the writer, so a
process that closes its storage has written everything it cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

import aiosqlite

from .base import CacheStats
from .cache_writes import COLUMNS, SELECT_ANSWER, Row, WriteBehindCache
from .diagnose import translating, use_wal
from .migrations import Migration, migrate
from .sqlite_thread import writing

BUSY_TIMEOUT_S = 30.0

_INSERT = f"insert or replace into responses ({COLUMNS}) values ({', '.join('?' * 11)})"


async def m001_responses(db: aiosqlite.Connection) -> None:
    """One complete answer per request key, with the original call's usage and latency."""
    await db.execute(
        """create table responses (
            key text primary key,        -- sha256 hex of the canonical request
            content text not null,
            trace text,
            finish_reason text not null,
            input_tokens integer not null,
            cached_input_tokens integer not null,
            output_tokens integer not null,
            reasoning_tokens integer not null,
            estimated integer not null,
            latency_s real not null,
            created_at real not null
        ) without rowid"""
    )
    # `cache stats` reports the oldest and newest entries without reading the whole table.
    await db.execute("create index responses_by_created on responses(created_at)")


MIGRATIONS: list[Migration] = [m001_responses]


class SqliteResponseCache(WriteBehindCache):
    """`ResponseCache` on `path`. Construct it unopened; `close` when done."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()
        self._lock = asyncio.Lock()  # one transaction at a time on the shared connection

    async def _connection(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._db is None:
                self._db = await self._open()
            return self._db

    async def _open(self) -> aiosqlite.Connection:
        with translating(self.path):
            # isolation_level=None: no implicit BEGINs, every transaction here is explicit.
            db = await aiosqlite.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            await use_wal(db, self.path, BUSY_TIMEOUT_S)
            with translating(self.path):
                await db.execute("pragma synchronous = normal")
                await migrate(db, MIGRATIONS)
        except BaseException:
            await db.close()
            raise
        return db

    async def check(self) -> None:
        await self._connection()

    async def _lookup(self, key: str) -> sqlite3.Row | None:
        db = await self._connection()
        with translating(self.path):
            rows = list(await db.execute_fetchall(SELECT_ANSWER, (key,)))
        return rows[0] if rows else None

    async def _store(self, rows: list[Row]) -> None:
        db = await self._connection()
        async with self._lock:
            with translating(self.path):
                await _in_transaction(db, _INSERT, rows)

    async def stats(self) -> CacheStats:
        await self._drain()
        db = await self._connection()
        with translating(self.path):
            rows = list(
                await db.execute_fetchall(
                    "select count(*), min(created_at), max(created_at) from responses"
                )
            )
        entries, oldest, newest = rows[0]
        size = await asyncio.to_thread(_disk_size, self.path)
        return CacheStats(str(self.path), entries, size, oldest, newest)

    async def clear(self) -> int:
        await self._drain()  # else a batch being written could land after the delete
        db = await self._connection()
        async with self._lock:
            with translating(self.path):
                cursor = await db.execute("delete from responses")
                removed = cursor.rowcount
                # Give the space back: clearing is how a user shrinks the file.
                await db.execute("vacuum")
                await db.execute("pragma wal_checkpoint(truncate)")
        return max(removed, 0)

    async def close(self) -> None:
        """Wait for pending answers to be written, then close the connection."""
        await self._drain()
        if self._db is not None:
            await self._db.close()
            self._db = None


async def _in_transaction(db: aiosqlite.Connection, sql: str, rows: list[Row]) -> None:
    # BEGIN IMMEDIATE, the rows, COMMIT (or a rollback) in one trip to the connection's thread.
    await writing(db)([(sql, rows)])


def _disk_size(path: Path) -> int:
    """The database file and its write-ahead log, as they take space now."""
    total = 0
    for name in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):  # no WAL until the first write
            total += os.path.getsize(name)
    return total
