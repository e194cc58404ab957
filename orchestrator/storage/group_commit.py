"""Group commit: rows that arrive while a commit is in flight are written together by the next
one, so N concurrent runs pay for about one commit per batch instead of N; each caller returns
once its own rows are committed (or with the error of the commit that held them).

Used by the run logs (billed calls, failed attempts, step spans: sql_runlog.py) and by the
checkpoint savers (checkpoints and pending writes: sqlite_group.py, postgres_group.py), whose
per-write commits were a large share of a run's CPU with many runs in flight. A user gives
`_committing()`: an async context (entered when a batch may be written: a lock taken, a
connection checked out) yielding a `Writer`, which writes every statement's rows in one
transaction and commits it (all or none), raising the error if it cannot.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = tuple[object, ...]
Pending = tuple[str, Sequence[Row], "asyncio.Future[None]"]  # statement, rows, caller's wake-up
Statements = list[tuple[str, list[Row]]]
Writer = Callable[[Statements], Awaitable[None]]


class Executing(Protocol):
    async def executemany(self, sql: str, rows: list[Row], /) -> Any: ...


def executing(cursor: Executing) -> Writer:
    """A `Writer` for a cursor already inside a transaction its context commits."""

    async def write(statements: Statements) -> None:
        for sql, rows in statements:
            await cursor.executemany(sql, rows)

    return write


class GroupCommit(abc.ABC):
    """`_append(sql, rows)` waits for the commit that holds the rows; one task writes batches."""

    max_batch = 10_000
    """Most appends one group commit writes (1 turns group commit off, for measurements)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Cooperative: a checkpoint saver mixes this in before LangGraph's saver.
        super().__init__(*args, **kwargs)
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def _committing(self) -> AbstractAsyncContextManager[Writer]:
        """Entered when a batch may be written; yields what writes and commits it."""

    async def _append(self, sql: str, rows: Sequence[Row]) -> None:
        """Add `rows` to the next commit; return once it has committed (or raise its error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((sql, rows, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller cancelled while waiting still gets its rows written (a billed
        # call, a finished task's writes).
        await asyncio.shield(done)

    async def _flush(self) -> None:
        """Commit pending rows in batches until none are left; wake each batch's callers."""
        while self._pending:
            batch: list[Pending] = []
            try:
                async with self._committing() as write:
                    # Taken once it is our turn: rows that came while we waited join.
                    batch = self._take_batch()
                    # Consecutive appends of one statement in one executemany, order kept.
                    await write([
                        (sql, [row for _, rows, _ in group for row in rows])
                        for sql, group in itertools.groupby(batch, key=lambda p: p[0])
                    ])  # fmt: skip
            except Exception as exc:
                # A failed BEGIN fails the callers waiting for it rather than retrying forever.
                settle(batch or self._take_batch(), exc)
                continue
            except BaseException:
                # Cancelled (the loop is shutting down): no one is left to write the rest.
                batch += self._pending
                self._pending = []
                settle(batch, None, cancel=True)
                raise
            settle(batch, None)

    def _take_batch(self) -> list[Pending]:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        return batch

    async def drain(self) -> None:
        """Until the rows appended so far are written (or have failed, to their callers)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})


def settle(batch: list[Pending], error: Exception | None, cancel: bool = False) -> None:
    for _, _, done in batch:
        if done.done():
            continue
        if cancel:
            done.cancel()
        elif error is not None:
            done.set_exception(error)
        else:
            done.set_result(None)
