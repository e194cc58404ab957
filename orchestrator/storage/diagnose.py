"""Turning a broken state directory into one `StorageError` a user can act on.

Every SQLite failure the environment can cause (a corrupt or foreign file, a full disk, an
unwritable directory, a lock held too long) passes through `storage_error`, so the message always
names the file and says what to do. Failures that mean a bug in orchestrator (a constraint
violated, SQL misspelled) are left as they are: hiding them behind "check your disk" would lie.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiosqlite

from ..errors import StorageError

# SQLite primary result codes (sqlite3.h); Python 3.11 exposes the extended code on each error.
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

_LOST = {
    "runs.sqlite": "its run history is lost",
    "checkpoints.sqlite": "runs saved in it can no longer be resumed",
    "cache.sqlite": "only cached answers are lost",
}


def _corrupt(path: Path, detail: str) -> str:
    lost = _LOST.get(path.name, "its contents are lost")
    return (
        f"{path} is not a valid SQLite database ({detail}): move it aside or delete it "
        f"({lost}), then retry"
    )


def storage_error(exc: sqlite3.Error, path: Path) -> StorageError | None:
    """The StorageError for an environmental SQLite failure on `path`; None for anything else."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    detail = str(exc)
    if primary in (SQLITE_NOTADB, SQLITE_CORRUPT):
        message = _corrupt(path, detail)
    elif primary == SQLITE_FULL:
        message = (
            f"cannot write {path}: the disk is full ({detail}): free some disk space, then retry"
        )
    elif primary == SQLITE_IOERR:
        # ENOSPC is reported as SQLITE_FULL; a quota (EDQUOT) or a file size limit (EFBIG) is a
        # plain write error, and so is a failing disk: name all of them.
        message = (
            f"cannot write {path} ({detail}): the disk may be full, over a quota or failing: "
            "free some disk space (or check the disk), then retry"
        )
    elif primary in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM):
        message = (
            f"cannot open {path} for writing ({detail}): make {path.parent} and the files in it "
            "writable, or set ORCHESTRATOR_HOME to a writable directory"
        )
    elif primary in (SQLITE_BUSY, SQLITE_LOCKED):
        message = (
            f"{path} stayed locked by another process for too long ({detail}): wait for the "
            "other orchestrator processes using it to finish, then retry"
        )
    else:
        return None
    return StorageError(message, path=str(path))


@contextmanager
def translating(path: Path) -> Iterator[None]:
    """Re-raise an environmental SQLite failure on `path` as its StorageError."""
    try:
        yield
    except sqlite3.Error as exc:
        error = storage_error(exc, path)
        if error is None:
            raise
        raise error from exc


def prepare_home(home: Path) -> None:
    """Create the state directory if needed; StorageError if it cannot hold the databases.

    Blocking (it touches the file system): run it off the event loop.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StorageError(
            f"{home} is a file, not a directory: move it aside, or set ORCHESTRATOR_HOME to a "
            "directory for orchestrator's state",
            path=str(home),
        ) from exc
    except NotADirectoryError as exc:
        blocker = _file_ancestor(home)
        raise StorageError(
            f"cannot create the state directory {home}: {blocker} is a file, not a directory: "
            "set ORCHESTRATOR_HOME to a directory (or move the file aside)",
            path=str(home),
        ) from exc
    except OSError as exc:
        raise _unwritable(home, exc.strerror or str(exc)) from exc
    # access() honours read-only mounts and immutable directories even for root.
    if not os.access(home, os.W_OK | os.X_OK):
        raise _unwritable(home, os.strerror(errno.EACCES))


def _unwritable(home: Path, reason: str) -> StorageError:
    return StorageError(
        f"the state directory {home} is not writable ({reason}): make it writable, or set "
        "ORCHESTRATOR_HOME to a writable directory",
        path=str(home),
    )


def _file_ancestor(path: Path) -> Path:
    """The nearest existing ancestor of `path` that is not a directory (for the message)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


async def waiting_out_locks(
    path: Path, patience_s: float, attempt: Callable[[], Awaitable[object]]
) -> None:
    """Run `attempt` (a switch to WAL), again while another connection holds the file's lock.

    Switching a new file to WAL takes an exclusive lock without going through SQLite's busy
    handler: two first opens at once (threads of one process, or two processes) would make one
    fail at once with "database is locked". Once the file is in WAL, asking again is free.
    Any other failure (a file that is not a database, a full disk) is translated as usual.
    """
    deadline = time.monotonic() + patience_s
    with translating(path):
        while True:
            try:
                await attempt()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.02)  # the other opener holds the lock for milliseconds


async def use_wal(db: aiosqlite.Connection, path: Path, patience_s: float) -> None:
    """Put the file in WAL mode, waiting out another opener doing the same."""

    async def switch() -> None:
        await db.execute("pragma journal_mode = wal")

    await waiting_out_locks(path, patience_s, switch)
