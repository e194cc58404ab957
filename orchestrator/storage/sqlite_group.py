"""LangGraph's AsyncSqliteSaver with its writes group-committed.

The saver commits each checkpoint and each task's pending writes on its own: three or four
statements handed to the connection's thread and back, for each. A run writes a checkpoint per
step and pending writes per task, durably before the next step starts, so that hand-off (a
queue, a thread switch, a wake-up of the event loop) was a quarter of a run's CPU when many runs
share the file. Here every write waiting at the same moment goes in one transaction: one
executemany per statement and one commit for all of them, each writer told when its own rows are
committed. Rows are written exactly as LangGraph writes them, in the order they were asked for,
so the checkpoints read back (and resume) as LangGraph's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

PUT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_WRITES = (
    "INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, "
    "type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
REPLACE_WRITES = "INSERT OR REPLACE " + _PUT_WRITES
KEEP_WRITES = "INSERT OR IGNORE " + _PUT_WRITES

Rows = list[tuple[Any, ...]]


@dataclass
class _Batch:
    """Statements waiting for the next commit, in the order they were asked for."""

    statements: list[tuple[str, Rows]] = field(default_factory=list)
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitSqliteSaver(AsyncSqliteSaver):
    """AsyncSqliteSaver whose `aput` and `aput_writes` share commits with each other's."""

    _batch: _Batch | None = None
    _writer: asyncio.Task[None] | None = None

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        row = (
            str(configurable["thread_id"]),
            configurable["checkpoint_ns"],
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            type_,
            blob,
            meta.encode("utf-8", "ignore"),
        )
        await self._commit(PUT_CHECKPOINT, [row])
        return {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": configurable["checkpoint_ns"],
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        # As LangGraph decides: special channels (errors, interrupts) replace, others are kept.
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        configurable = config["configurable"]
        key = (
            str(configurable["thread_id"]),
            str(configurable["checkpoint_ns"]),
            str(configurable["checkpoint_id"]),
            task_id,
            task_path,
        )
        rows = [
            (*key, WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        await self._commit(REPLACE_WRITES if special else KEEP_WRITES, rows)

    async def _commit(self, sql: str, rows: Rows) -> None:
        """Add the rows to the next commit; return once it is committed (or raise its error)."""
        if self._batch is None:
            self._batch = _Batch()
        batch = self._batch
        batch.statements.append((sql, rows))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        # The writer commits whether or not this caller is still waiting (a cancelled run's
        # last writes are kept, as LangGraph's own saver keeps a statement already sent).
        await asyncio.shield(batch.done)

    async def _write_batches(self) -> None:
        while self._batch is not None:
            batch, self._batch = self._batch, None
            try:
                async with self.lock:
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

    async def _write(self, statements: list[tuple[str, Rows]]) -> None:
        try:
            # Consecutive statements of one kind go in one executemany, keeping their order.
            start = 0
            for end in range(1, len(statements) + 1):
                if end == len(statements) or statements[end][0] != statements[start][0]:
                    rows = [row for _, some in statements[start:end] for row in some]
                    await self.conn.executemany(statements[start][0], rows)
                    start = end
            await self.conn.commit()
        except BaseException:
            with suppress(Exception):
                await self.conn.rollback()
            raise

    async def drain(self) -> None:
        """Wait for the writes already asked for (before closing the connection)."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])  # its outcome is its writers' to hear
