"""LangGraph's checkpoint savers, with failures of the storage itself raised as StorageError.

A mixin placed before LangGraph's saver (`class CheckpointSaver(TranslatingSaver,
AsyncSqliteSaver)`): each method the runs use is called inside the backend's `_translating()`,
and a write that fails goes through `_write_failed()` before the error goes on.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)


def writes_replace(writes: Sequence[tuple[str, Any]]) -> bool:
    """Whether a task's pending writes replace earlier ones for the same task and index (as
    LangGraph's savers decide: only when every channel is a special one, errors or
    interrupts), or are kept as first written."""
    return all(channel in WRITES_IDX_MAP for channel, _ in writes)


class TranslatingSaver(BaseCheckpointSaver[str], metaclass=abc.ABCMeta):
    @abc.abstractmethod
    def _translating(self) -> AbstractContextManager[Any]:
        """Turns the backend's own failures into one StorageError naming where it is."""

    async def _write_failed(self) -> None:
        """Called when a write failed, before its error goes on (SQLite rolls back here)."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self._translating():
            return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        with self._translating():
            async for item in super().alist(config, filter=filter, before=before, limit=limit):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        try:
            with self._translating():
                return await super().aput(config, checkpoint, metadata, new_versions)
        except BaseException:
            await self._write_failed()
            raise

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        try:
            with self._translating():
                await super().aput_writes(config, writes, task_id, task_path)
        except BaseException:
            await self._write_failed()
            raise

    async def adelete_thread(self, thread_id: str) -> None:
        try:
            with self._translating():
                await super().adelete_thread(thread_id)
        except BaseException:
            await self._write_failed()
            raise
