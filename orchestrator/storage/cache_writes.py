"""What the SQLite and PostgreSQL response caches share: the row, and writing behind.

`put` returns at once (see `ResponseCache.put`): answers waiting to be written are kept in
memory, where `get` finds them, and one writer task stores them in batches. A write that fails
is logged once and dropped; the answer is simply not cached. A backend gives `_lookup(key)` (the
stored row, `SELECT_ANSWER`'s columns) and `_store(rows)` (`COLUMNS` rows, in one transaction).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..models.base import TokenUsage
from .base import CachedAnswer

COLUMNS = (
    "key, content, trace, finish_reason, input_tokens, cached_input_tokens, output_tokens, "
    "reasoning_tokens, estimated, latency_s, created_at"
)
SELECT_ANSWER = (
    "select content, trace, finish_reason, input_tokens, cached_input_tokens, "
    "output_tokens, reasoning_tokens, estimated, latency_s from responses where key = ?"
)
Row = tuple[object, ...]


class WriteBehindCache(abc.ABC):
    def __init__(self) -> None:
        self._pending: dict[str, tuple[CachedAnswer, float]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._warned = False

    @abc.abstractmethod
    async def _lookup(self, key: str) -> Sequence[Any] | None:
        """The stored row for `key` (`SELECT_ANSWER`'s columns), or None."""

    @abc.abstractmethod
    async def _store(self, rows: list[Row]) -> None:
        """Insert or replace `rows` (`COLUMNS`) in one transaction."""

    def _describe(self, exc: Exception) -> str:
        """A failed write in one line, never a secret."""
        return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"

    async def get(self, key: str) -> CachedAnswer | None:
        waiting = self._pending.get(key)
        if waiting is not None:
            return waiting[0]
        stored = await self._lookup(key)
        if stored is None:
            return None
        content, trace, finish, i, c, o, r, estimated, latency = stored
        return CachedAnswer(
            content, trace, finish, TokenUsage(i, c, o, r, bool(estimated)), latency
        )

    def put(self, key: str, answer: CachedAnswer) -> None:
        self._pending[key] = (answer, time.time())
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Store pending answers in batches until none are left."""
        while self._pending:
            batch = dict(self._pending)
            try:
                await self._store([row(k, *v) for k, v in batch.items()])
            except Exception as exc:
                # Once per cache: a full disk would otherwise repeat the line for every answer.
                # Logged as the backend's module (orchestrator.storage.sqlite_cache, ...).
                if not self._warned:
                    self._warned = True
                    logging.getLogger(type(self).__module__).warning(
                        "response cache: answers could not be stored: %s", self._describe(exc)
                    )
            for key, entry in batch.items():
                if self._pending.get(key) is entry:  # not put again while being written
                    del self._pending[key]

    async def _drain(self) -> None:
        """Wait until every answer put so far is written (or its write has failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})  # its failures are reported by the writer


def row(key: str, answer: CachedAnswer, created_at: float) -> Row:
    u = answer.usage
    return (
        key, answer.content, answer.trace, answer.finish_reason, u.input_tokens,
        u.cached_input_tokens, u.output_tokens, u.reasoning_tokens, int(u.estimated),
        answer.latency_s, created_at,
    )  # fmt: skip
