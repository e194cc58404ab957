"""Where runs are kept: checkpoints, the run log, run leases and the response cache, opened
together.

    async with open_storage() as storage:        # $ORCHESTRATOR_HOME, else ~/.orchestrator
        await storage.runs.start_run(run_id, ...)
        graph = builder.compile(checkpointer=storage.checkpointer)

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
    "open_storage",
    "orchestrator_home",
]


def orchestrator_home() -> Path:
    """The state directory: $ORCHESTRATOR_HOME, else ~/.orchestrator."""
    return Path(os.environ.get("ORCHESTRATOR_HOME") or Path.home() / ".orchestrator").expanduser()


class _OpenStorage(Storage, Protocol):
    """What an implementation gives `open_storage`: a Storage it can close."""

    async def close(self) -> None: ...


async def _connect(location: Path) -> _OpenStorage:
    """Open the implementation for `location`.

    The seam for other backends: when `location` may be a URL (postgresql://...), this is where
    it is told apart from a directory and handed to that implementation's `open`.
    """
    # Imported here: a deployment on another backend need not have aiosqlite or LangGraph's
    # SQLite saver installed.
    from .sqlite import SqliteStorage

    return await SqliteStorage.open(location)


@dataclass
class _Shared:
    opened: asyncio.Task[_OpenStorage]
    users: int = 0


_shared: dict[tuple[asyncio.AbstractEventLoop, str], _Shared] = {}


@asynccontextmanager
async def open_storage(home: Path | None = None) -> AsyncIterator[Storage]:
    """The storage at `home` (default `orchestrator_home()`), shared on this event loop.

    Raises StorageError, naming the file and what to do, if the directory or a database in it
    cannot be used. Do not close what it yields: the last user to leave closes it.
    """
    location = (home if home is not None else orchestrator_home()).expanduser()
    key = (asyncio.get_running_loop(), str(location.resolve()))
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
