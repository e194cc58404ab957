"""`PostgresStorage`: checkpoints, the run log and the response cache in one PostgreSQL database.

    checkpoint*          LangGraph's AsyncPostgresSaver (langgraph-checkpoint-postgres)
    runs, calls, ...     the run log (postgres_runlog.py), the same rows as runs.sqlite
    responses            the response cache (postgres_cache.py)
    _migrations          which of the run log's and cache's migrations the database has

Chosen with `ORCHESTRATOR_DATABASE_URL=postgresql://...`. Every statement runs on psycopg's
async driver over one `AsyncConnectionPool` per opened storage, so the event loop never waits
on the server and several processes (or machines) can share one database: a run started by one
can be resumed by another, and the run log's leases keep a run id to one process at a time.

Opening connects once first, on its own, so that a bad URL, an unreachable server, a refused
login or missing privileges is reported as one StorageError (naming the URL without its
password) before any model is called; that connection then applies the migrations and
LangGraph's `setup()` under an advisory lock, and the pool is opened after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .base import ResponseCache, RunLog
from .postgres_cache import PostgresResponseCache
from .postgres_errors import Redactor
from .postgres_group import GroupCommitPostgresSaver
from .postgres_migrations import migrate, schema_lock
from .postgres_runlog import PostgresRunLog
from .saver import TranslatingSaver

CONNECT_TIMEOUT_S = 10
FRESH_S = 1.0
"""A connection returned to the pool less than this long ago is handed out unchecked."""
POOL_MAX_SIZE = 10
"""Connections one process opens at most; its concurrent runs take turns on them."""


class PostgresStorage:
    """Checkpointer, run log and response cache in one database. Open with `open`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        redactor: Redactor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.location = redactor.location
        self._pool = pool
        self._saver = CheckpointSaver(pool, redactor)
        self._runs = PostgresRunLog(pool, redactor, clock)
        self._cache = PostgresResponseCache(pool, redactor)
        self.checkpointer: BaseCheckpointSaver[str] = self._saver
        self.runs: RunLog = self._runs
        self.cache: ResponseCache = self._cache

    def __repr__(self) -> str:
        return f"PostgresStorage({self.location!r})"

    @classmethod
    async def open(cls, url: str, clock: Callable[[], float] = time.time) -> PostgresStorage:
        """Connect, create or upgrade the tables, open the pool; StorageError if unusable."""
        redactor = Redactor(url)
        kwargs = _connect_kwargs(url, redactor)
        with redactor.translating():
            first = await psycopg.AsyncConnection.connect(url, row_factory=dict_row, **kwargs)
            async with first as conn, schema_lock(conn, redactor.location):
                await migrate(conn)
                # LangGraph's saver on this very connection: its setup() makes its tables
                # under our lock (two at once would both try to create them).
                await AsyncPostgresSaver(conn).setup()
            freshness = _Freshness()
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX_SIZE,
                # What LangGraph's saver requires of its connections; the run log and cache
                # ask for tuples per cursor and take their transactions explicitly.
                kwargs={**kwargs, "prepare_threshold": 0, "row_factory": dict_row},
                check=freshness.check,
                reset=freshness.returned,
                open=False,
                name="orchestrator",
            )
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except BaseException:
                await pool.close()
                raise
        return cls(pool, redactor, clock)

    async def close(self) -> None:
        try:
            await self._cache.close()
            await self._runs.close()
        finally:
            await self._saver.drain()
            await self._pool.close()


class _Freshness:
    """Checks a connection (one round trip) as the pool hands it out, unless it was in use
    moments ago: after the server restarts or drops idle connections, a long-lived process
    (serve) would otherwise fail one operation per stale connection in its pool, while checking
    every checkout cost a fifth of the throughput of 100 concurrent runs."""

    def __init__(self) -> None:
        self._returned: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()

    async def returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: AsyncConnection[Any]) -> None:
        last = self._returned.get(conn)
        if last is None or time.monotonic() - last > FRESH_S:
            await AsyncConnectionPool.check_connection(conn)


def _connect_kwargs(url: str, redactor: Redactor) -> dict[str, Any]:
    """Autocommit (transactions are explicit) and a connect timeout unless the URL sets one."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise redactor.bad_url(exc) from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    return kwargs


class CheckpointSaver(TranslatingSaver, GroupCommitPostgresSaver):
    """LangGraph's AsyncPostgresSaver, pending writes group-committed (postgres_group.py),
    whose environmental failures raise StorageError."""

    def __init__(self, pool: AsyncConnectionPool[Any], redactor: Redactor) -> None:
        super().__init__(pool)
        self.redactor = redactor

    def _translating(self) -> AbstractContextManager[Any]:
        return self.redactor.translating()
