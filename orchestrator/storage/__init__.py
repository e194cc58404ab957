"""Where runs are kept: checkpoints, the run log, run leases and the response cache, opened
together.

    async with open_storage() as storage:        # $ORCHESTRATOR_HOME, else ~/.orchestrator
        await storage.runs.start_run(run_id, ...)
        graph = builder.compile(checkpointer=storage.checkpointer)

With ORCHESTRATOR_DATABASE_URL=postgresql://... set, everything lives in that PostgreSQL database
instead (postgres.py; the `postgres` extra), whatever directory is passed: the variable is the
deployment's choice, and ORCHESTRATOR_HOME then only holds files that are not storage.

Every `open_storage` of one location on one event loop shares one opened `Storage`, closed when
its last user leaves: 300 concurrent runs in a process use one connection per database file,
since a connection each would make them fight over SQLite's write lock ("database is locked").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .base import (
    RUN_STATUSES,
    CachedAnswer,
    CacheStats,
    LeaseHolder,
    ResponseCache,
    RunLog,
    RunRow,
    StepSpan,
    Storage,
)

__all__ = [
    "RUN_STATUSES",
    "CacheStats",
    "CachedAnswer",
    "LeaseHolder",
    "ResponseCache",
    "RunLog",
    "RunRow",
    "StepSpan",
    "Storage",
    "database_url",
    "describe_location",
    "open_storage",
    "orchestrator_home",
]


def orchestrator_home() -> Path:
    """The state directory: $ORCHESTRATOR_HOME, else ~/.orchestrator."""
    return Path(os.environ.get("ORCHESTRATOR_HOME") or Path.home() / ".orchestrator").expanduser()


def database_url() -> str | None:
    """$ORCHESTRATOR_DATABASE_URL (a PostgreSQL URL, with its password), else None."""
    return os.environ.get("ORCHESTRATOR_DATABASE_URL", "").strip() or None


def describe_location(home: Path) -> str:
    """Where `open_storage(home)` keeps runs, for messages: the database URL without its
    password when ORCHESTRATOR_DATABASE_URL is set, else the directory."""
    url = database_url()
    if url is None:
        return str(home)
    from .postgres_errors import redact

    return redact(url)


class _OpenStorage(Storage, Protocol):
    """What an implementation gives `open_storage`: a Storage it can close."""

    async def close(self) -> None: ...


async def _connect(location: Path | str) -> _OpenStorage:
    """Open the implementation for `location`: a database URL, else a state directory."""
    if isinstance(location, str):
        return await _connect_url(location)
    # Imported here: a deployment on another backend need not have aiosqlite or LangGraph's
    # SQLite saver installed.
    from .sqlite import SqliteStorage

    return await SqliteStorage.open(location)


async def _connect_url(url: str) -> _OpenStorage:
    from ..errors import StorageError

    try:
        from .postgres_errors import Redactor, is_database_url
    except ImportError:  # psycopg missing: the extra is not installed
        raise StorageError(
            "ORCHESTRATOR_DATABASE_URL is set but PostgreSQL support is not installed: "
            "pip install 'orchestrator[postgres]' (or unset it to use SQLite)"
        ) from None
    if not is_database_url(url):
        raise Redactor(url).bad_url(ValueError("it must start with postgresql://"))
    from .postgres import PostgresStorage

    return await PostgresStorage.open(url)


@dataclass
class _Shared:
    opened: asyncio.Task[_OpenStorage]
    users: int = 0


_shared: dict[tuple[asyncio.AbstractEventLoop, str], _Shared] = {}


@asynccontextmanager
async def open_storage(home: Path | None = None) -> AsyncIterator[Storage]:
    """The storage at `home` (default `orchestrator_home()`), shared on this event loop; the
    database at ORCHESTRATOR_DATABASE_URL instead whenever that is set.

    Raises StorageError, naming the file or URL (without its password) and what to do, if it
    cannot be used. Do not close what it yields: the last user to leave closes it.
    """
    url = database_url()
    location: Path | str
    if url is not None:
        location = key_location = url
    else:
        location = (home if home is not None else orchestrator_home()).expanduser()
        key_location = str(location.resolve())
    key = (asyncio.get_running_loop(), key_location)
    shared = _shared.get(key)
    if shared is None:
        # A task, not the first caller's coroutine: callers arriving while it opens wait for
        # the same one, and the first caller being cancelled does not cancel it for the others.
        shared = _shared[key] = _Shared(asyncio.create_task(_connect(location)))
    shared.users += 1
    try:
        yield await asyncio.shield(shared.opened)
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _shared[key]
            await _close_when_opened(shared.opened)


async def _close_when_opened(opened: asyncio.Task[_OpenStorage]) -> None:
    if not opened.done():
        # Every user left (cancelled) before it opened: close it once it has.
        opened.add_done_callback(_close_later)
    elif not opened.cancelled() and opened.exception() is None:
        await opened.result().close()


def _close_later(opened: asyncio.Task[_OpenStorage]) -> None:
    if not opened.cancelled() and opened.exception() is None:
        _background.add(task := asyncio.ensure_future(opened.result().close()))
        task.add_done_callback(_background.discard)


# Tasks must be referenced until done, or the garbage collector may drop them midway.
_background: set[asyncio.Future[None]] = set()
