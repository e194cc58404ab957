"""`SqliteStorage`: the state directory (ORCHESTRATOR_HOME) holding three SQLite files.

    checkpoints.sqlite   LangGraph's AsyncSqliteSaver: each run's graph state, to resume from
    runs.sqlite          the run log: runs, every billed call, run leases (sqlite_runlog.py)
    cache.sqlite         the response cache (sqlite_cache.py), opened only when a run caches

Apart, because LangGraph owns the checkpoint schema and its saver manages its own connection
and transactions, and because the cache is disposable while the other two are not. Checkpoints
and the run log are opened, and checked to be SQLite databases, before any model is called; the
cache is checked before the first call of a run that uses it. A broken directory is reported up
front as one StorageError.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
)

from .base import ResponseCache, RunLog
from .diagnose import prepare_home, translating, waiting_out_locks
from .saver import TranslatingSaver
from .sqlite_cache import SqliteResponseCache
from .sqlite_group import GroupCommitSqliteSaver
from .sqlite_runlog import BUSY_TIMEOUT_S, SqliteRunLog

CHECKPOINTS_FILE = "checkpoints.sqlite"
RUNS_FILE = "runs.sqlite"
CACHE_FILE = "cache.sqlite"


_file_systems: dict[int, ThreadPoolExecutor] = {}


def _file_system() -> ThreadPoolExecutor:
    """This process's thread for file-system checks (a forked child's own: the parent's thread
    is not in it, and work handed to it would wait forever)."""
    pid = os.getpid()
    if pid not in _file_systems:
        _file_systems[pid] = ThreadPoolExecutor(1, thread_name_prefix="orchestrator-fs")
    return _file_systems[pid]


class SqliteStorage:
    """Checkpointer, run log and response cache in one directory. Open with `open`."""

    def __init__(self, home: Path, checkpointer: CheckpointSaver, runs: SqliteRunLog) -> None:
        self.location = str(home)
        self.home = home
        # Typed as the protocol has them (its attributes are settable, hence invariant); the
        # concrete objects stay reachable for `close`.
        self.checkpointer: BaseCheckpointSaver[str] = checkpointer
        self.runs: RunLog = runs
        self._saver = checkpointer
        self._runs = runs
        self._cache = SqliteResponseCache(home / CACHE_FILE)
        self.cache: ResponseCache = self._cache

    @classmethod
    async def open(cls, home: Path) -> SqliteStorage:
        """Create or open the databases under `home`; StorageError if either is unusable."""
        # Off the event loop (LangGraph's dev server refuses blocking calls on it), on one
        # thread kept for the process: the loop's default executor starts a thread and joins
        # it again for every event loop, ~1 ms of a run that has a loop of its own.
        await asyncio.get_running_loop().run_in_executor(_file_system(), prepare_home, home)
        # Both at once: each file has its own connection thread, and a run waits for both.
        opened = await asyncio.gather(
            SqliteRunLog.open(home / RUNS_FILE),
            CheckpointSaver.open(home / CHECKPOINTS_FILE),
            return_exceptions=True,
        )
        runs, checkpointer = opened
        if isinstance(runs, SqliteRunLog) and isinstance(checkpointer, CheckpointSaver):
            return cls(home, checkpointer, runs)
        # The run log's error first, as when they were opened one after the other.
        error = next(e for e in opened if isinstance(e, BaseException))
        await asyncio.gather(*(o.close() for o in opened if not isinstance(o, BaseException)))
        raise error

    async def close(self) -> None:
        try:
            await self._cache.close()
        finally:
            closed = await asyncio.gather(
                self._runs.close(), self._saver.close(), return_exceptions=True
            )
            for error in closed:
                if error is not None:
                    raise error


class CheckpointSaver(TranslatingSaver, GroupCommitSqliteSaver):
    """LangGraph's AsyncSqliteSaver, group-committed (sqlite_group.py); a file failure (a full
    disk) raises StorageError."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__(conn)
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> CheckpointSaver:
        with translating(path):
            conn = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S)
        saver = cls(conn, path)
        try:
            # Creating the tables now reads the schema: a file that is not a database is
            # reported here, before a run starts, not at its first checkpoint.
            await saver.setup()
            # setup() puts the file in WAL mode; with NORMAL, a commit survives the process
            # being killed (what resume relies on) and skips a disk sync per commit, which was
            # the largest single cost of a run. Only a power loss can undo the last commits.
            with translating(path):
                await conn.execute("pragma synchronous = normal")
        except BaseException:
            await conn.close()
            raise
        return saver

    async def close(self) -> None:
        """Wait for pending writes, then close the connection."""
        try:
            await self.drain()
        finally:
            await self.conn.close()

    def _translating(self) -> AbstractContextManager[Any]:
        return translating(self.path)

    async def _write_failed(self) -> None:
        # The saver commits only on success: undo a failed write under its lock, or its leftover
        # would be committed with the next coroutine's checkpoint.
        async with self.lock:
            with suppress(sqlite3.Error):
                await self.conn.rollback()  # a no-op outside a transaction

    async def setup(self) -> None:
        # setup() switches the file to WAL first: wait out another opener of a new file.
        await waiting_out_locks(self.path, BUSY_TIMEOUT_S, super().setup)
