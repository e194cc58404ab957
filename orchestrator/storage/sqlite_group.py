"""LangGraph's AsyncSqliteSaver with its checkpoints and pending writes group-committed, and a
checkpoint read in one trip to the connection's thread.

The saver commits each on its own: three or four statements handed to the connection's thread
and back, for each, a quarter of a run's CPU when many runs share the file. Here every write
waiting at the same moment goes in one transaction (group_commit.py, as the run log's rows do),
written and committed in one trip to the thread (sqlite_thread.py).
Rows are written exactly as LangGraph writes them, in the order they were asked for, so the
checkpoints read back (and resume) as LangGraph's own.

A run reads its checkpoint three times (before it starts, as the graph starts, once it ends);
LangGraph's `aget_tuple` takes six trips to the thread for it (cursor, query, fetch, query, fetch,
close). Here both queries run in one, and the rows are turned into a tuple as LangGraph does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql

from .group_commit import GroupCommit, Writer
from .saver import writes_replace
from .sqlite_thread import on_thread, writing

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
_GET_CHECKPOINT = (
    "SELECT thread_id, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata "
    "FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
)
GET_CHECKPOINT = _GET_CHECKPOINT + "AND checkpoint_id = ?"
GET_LATEST = _GET_CHECKPOINT + "ORDER BY checkpoint_id DESC LIMIT 1"
Found = tuple[tuple[Any, ...], list[tuple[Any, ...]]] | None  # a checkpoint's row, its writes


class GroupCommitSqliteSaver(GroupCommit, AsyncSqliteSaver):
    """AsyncSqliteSaver whose `aput` and `aput_writes` share commits with each other's."""

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
        await self._append(PUT_CHECKPOINT, [row])
        return _config(configurable["thread_id"], configurable["checkpoint_ns"], checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
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
        await self._append(REPLACE_WRITES if writes_replace(writes) else KEEP_WRITES, rows)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self.setup()
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        wanted = get_checkpoint_id(config)
        writes_sql = pending_writes_sql(self._has_task_path)

        def read(conn: sqlite3.Connection) -> Found:
            if wanted:
                row = conn.execute(GET_CHECKPOINT, (thread_id, ns, wanted)).fetchone()
            else:
                row = conn.execute(GET_LATEST, (thread_id, ns)).fetchone()
            if row is None:
                return None
            return row, conn.execute(writes_sql, (thread_id, ns, str(row[1]))).fetchall()

        async with self.lock:
            found = await on_thread(self.conn, read)
        if found is None:
            return None
        (_, checkpoint_id, parent_id, type_, checkpoint, metadata), writes = found
        return CheckpointTuple(
            config if wanted else _config(thread_id, ns, checkpoint_id),
            self.serde.loads_typed((type_, checkpoint)),
            cast(CheckpointMetadata, json.loads(metadata) if metadata is not None else {}),
            _config(thread_id, ns, parent_id) if parent_id else None,
            load_pending_writes(writes, self.serde),
        )

    @asynccontextmanager
    async def _committing(self) -> AsyncIterator[Writer]:
        async with self.lock:  # the saver's reads take it too: none sees half a batch
            yield writing(self.conn)


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }
