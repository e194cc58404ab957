"""LangGraph's AsyncPostgresSaver with its pending writes group-committed.

Each task's pending writes were serialised on a worker thread and sent through a pooled
connection in a pipeline of their own. Here they are serialised where they are asked for (a few
small values: the thread hop cost more) and every write waiting at the same moment goes out in
one pipeline on one connection (group_commit.py). Checkpoints themselves (`aput`, one per step)
stay LangGraph's: splitting their channels into blobs uses the saver's internal types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from .group_commit import GroupCommit, Statements, runs_of_one_kind


class GroupCommitPostgresSaver(GroupCommit, AsyncPostgresSaver):
    """AsyncPostgresSaver whose `aput_writes` share a round trip with each other's."""

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
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        sql = self.UPSERT_CHECKPOINT_WRITES_SQL if special else self.INSERT_CHECKPOINT_WRITES_SQL
        await self._commit(sql, list(rows))

    async def _write(self, statements: Statements) -> None:
        # One transaction in one pipeline, synced at its end: all of it is committed before any
        # writer returns, or none of it, and every writer in it hears the error.
        async with self._cursor(pipeline=True) as cur, cur.connection.transaction():
            for sql, rows in runs_of_one_kind(statements):
                await cur.executemany(sql, rows)
