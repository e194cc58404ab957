"""LangGraph's AsyncPostgresSaver with its pending writes group-committed.

Each task's pending writes were serialised on a worker thread and sent through a pooled
connection in a pipeline of their own. Here they are serialised where they are asked for (a few
small values: the thread hop cost more) and every write waiting at the same moment goes out in
one pipeline on one connection (group_commit.py). Checkpoints themselves (`aput`, one per step)
stay LangGraph's: splitting their channels into blobs uses the saver's internal types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from .group_commit import GroupCommit, Writer, executing
from .saver import writes_replace


class GroupCommitPostgresSaver(GroupCommit, AsyncPostgresSaver):
    """AsyncPostgresSaver whose `aput_writes` share a round trip with each other's."""

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        sql = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if writes_replace(writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        await self._append(sql, rows)

    @asynccontextmanager
    async def _committing(self) -> AsyncIterator[Writer]:
        # One transaction in one pipeline, synced at its end: all of a batch is committed
        # before any of its writers returns, or none of it, and every writer hears the error.
        async with self._cursor(pipeline=True) as cur, cur.connection.transaction():
            yield executing(cur)
