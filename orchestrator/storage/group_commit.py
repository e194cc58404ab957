"""Group commit for LangGraph's checkpoint savers: writes waiting at the same moment share one
transaction (or one pipelined round of statements), each writer told when its own rows are in.

A run writes a checkpoint per step and pending writes per task, durably before the next step
starts; the savers commit each on its own. With many runs in flight, that per-write round trip
(a hand-off to SQLite's thread, a pooled connection and a pipeline sync for PostgreSQL) was a
large share of a run's CPU. A saver mixes this in before LangGraph's saver, builds its rows as
LangGraph does, and gives `_write` the statements of one batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

Rows = list[tuple[Any, ...]]
Statements = list[tuple[str, Rows]]


@dataclass
class _Batch:
    """Statements waiting for the next commit, in the order they were asked for."""

    statements: Statements = field(default_factory=list)
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def runs_of_one_kind(statements: Statements) -> list[tuple[str, Rows]]:
    """Consecutive statements of one kind merged, for one executemany each, order kept."""
    merged: list[tuple[str, Rows]] = []
    for sql, rows in statements:
        if merged and merged[-1][0] == sql:
            merged[-1][1].extend(rows)
        else:
            merged.append((sql, list(rows)))
    return merged


class GroupCommit:
    """`_commit(sql, rows)` adds rows to the next batch; one writer task writes the batches."""

    _batch: _Batch | None = None
    _writer: asyncio.Task[None] | None = None

    async def _write(self, statements: Statements) -> None:
        """Write (and commit) one batch; raise if it failed, leaving nothing half-written."""
        raise NotImplementedError

    async def _commit(self, sql: str, rows: Rows) -> None:
        """Add the rows to the next commit; return once it is committed (or raise its error)."""
        if self._batch is None:
            self._batch = _Batch()
        batch = self._batch
        batch.statements.append((sql, rows))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        # The writer commits whether or not this caller is still waiting (a cancelled run's
        # last writes are kept, as the saver's own would be once sent).
        await asyncio.shield(batch.done)

    async def _write_batches(self) -> None:
        while self._batch is not None:
            batch, self._batch = self._batch, None
            try:
                await self._write(batch.statements)
            except asyncio.CancelledError:  # the loop is closing: nobody is left to wait
                for waiting in (batch, self._batch):
                    if waiting is not None:
                        waiting.done.cancel()
                raise
            except Exception as exc:
                batch.done.set_exception(exc)
            else:
                batch.done.set_result(None)

    async def drain(self) -> None:
        """Wait for the writes already asked for (before closing the connection)."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])  # its outcome is its writers' to hear
