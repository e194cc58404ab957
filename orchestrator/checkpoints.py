"""The SQLite checkpointer, shared: one connection per event loop for every run on it.

A connection per run makes concurrent runs fight over the file's write lock ("database is
locked" at ~100 runs at once); LangGraph's AsyncSqliteSaver serializes its own writes, so one
shared saver per loop does not. A generous busy timeout covers other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

CHECKPOINTS_FILE = "checkpoints.sqlite"
BUSY_TIMEOUT_S = 30.0


@dataclass
class _Shared:
    saver: asyncio.Future[AsyncSqliteSaver]
    users: int = 0


_shared: dict[tuple[asyncio.AbstractEventLoop, Path], _Shared] = {}


async def _open(path: Path) -> AsyncSqliteSaver:
    return AsyncSqliteSaver(await aiosqlite.connect(str(path), timeout=BUSY_TIMEOUT_S))


@asynccontextmanager
async def checkpointer(home: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """The checkpointer for `home` on this event loop; closed when its last user is done."""
    home.mkdir(parents=True, exist_ok=True)
    key = (asyncio.get_running_loop(), home.resolve() / CHECKPOINTS_FILE)
    if key not in _shared:
        _shared[key] = _Shared(asyncio.ensure_future(_open(key[1])))
    shared = _shared[key]
    shared.users += 1
    try:
        yield await shared.saver
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _shared[key]
            if shared.saver.done() and not shared.saver.exception():
                await shared.saver.result().conn.close()
