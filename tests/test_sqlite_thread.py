"""A SQLite transaction in one trip to aiosqlite's thread (storage/sqlite_thread.py): it runs on
the connection's own thread, commits all or nothing, and a run log's batch of rows, its leases
and its run rows each take one trip."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from orchestrator.errors import StorageError
from orchestrator.storage.sqlite_runlog import SqliteRunLog
from orchestrator.storage.sqlite_thread import in_transaction, on_thread, write_rows


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every function handed to an aiosqlite connection's thread, from now on."""
    handed: list[object] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        handed.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_work_runs_on_the_connection_s_thread_with_its_connection(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "x.sqlite", isolation_level=None) as db:
        where = await on_thread(db, lambda conn: (threading.get_ident(), conn))
        assert where[0] != threading.get_ident()
        assert isinstance(where[1], sqlite3.Connection)
        # The same thread every time: aiosqlite's, which its own statements use too.
        assert await on_thread(db, lambda conn: threading.get_ident()) == where[0]


async def test_rows_are_all_committed_or_none(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "x.sqlite", isolation_level=None) as db:
        await db.execute("create table t (a integer primary key)")
        await on_thread(db, lambda c: write_rows(c, [("insert into t values (?)", [(1,), (2,)])]))
        with pytest.raises(sqlite3.IntegrityError):
            insert = "insert into t values (?)"
            await on_thread(db, lambda c: write_rows(c, [(insert, [(3,)]), (insert, [(1,)])]))
        assert await on_thread(db, lambda c: c.in_transaction) is False
        assert list(await db.execute_fetchall("select a from t order by a")) == [(1,), (2,)]

        def fails(conn: sqlite3.Connection) -> None:
            conn.execute("insert into t values (9)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await on_thread(db, lambda c: in_transaction(c, fails))
        assert list(await db.execute_fetchall("select count(*) from t")) == [(2,)]


async def test_a_run_log_write_is_one_trip_to_the_thread(
    tmp_path: Path, trips: list[object]
) -> None:
    log = await SqliteRunLog.open(tmp_path / "runs.sqlite")
    try:
        for write in (
            log.start_run("r1", "wf", None, "task"),
            log.acquire_lease("r1", "me", 60.0),
            log.renew_lease("r1", "me", 60.0),
            log.release_lease("r1", "me"),
            log.finish_run("r1", "completed", None),
        ):
            trips.clear()
            await write
            assert len(trips) == 1, trips  # BEGIN, the statements and COMMIT: one trip
        # Many rows waiting together: one trip for all of them.
        trips.clear()
        await asyncio.gather(*(log.finish_run("r1", "completed", None) for _ in range(50)))
        assert len(trips) <= 2, trips
    finally:
        await log.close()
    row = sqlite3.connect(tmp_path / "runs.sqlite").execute("select status from runs").fetchall()
    assert row == [("completed",)]


async def test_a_failed_run_log_write_is_a_storage_error_and_the_next_one_works(
    tmp_path: Path,
) -> None:
    log = await SqliteRunLog.open(tmp_path / "runs.sqlite")
    try:
        await log.start_run("r1", "wf", None, "task")
        await log._db.execute("pragma max_page_count = 1")  # SQLite's own "disk is full"
        with pytest.raises(StorageError, match="free some disk space"):
            await log.start_run("r2", "wf", None, "x" * 100_000)
        await log._db.execute("pragma max_page_count = 1000000")
        await log.start_run("r3", "wf", None, "task")
        assert [r.run_id for r in await log.recent_runs(10)] == ["r3", "r1"]
    finally:
        await log.close()


async def test_a_checkpoint_reads_as_langgraph_reads_it_in_one_trip(
    tmp_path: Path, trips: list[object]
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from orchestrator.storage.sqlite import CHECKPOINTS_FILE, CheckpointSaver

    path = tmp_path / CHECKPOINTS_FILE
    ours = await CheckpointSaver.open(path)
    try:
        parent: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        first = await ours.aput(parent, empty_checkpoint(), {"step": 1}, {})
        second = await ours.aput(first, {**empty_checkpoint(), "id": "z"}, {"step": 2}, {})
        await ours.aput_writes(second, [("x", 1), ("__error__", "boom")], "task-a")
        await ours.aput_writes(first, [("y", 2)], "task-b", "path")
        async with aiosqlite.connect(path) as conn:
            theirs = AsyncSqliteSaver(conn)
            for config in (
                {"configurable": {"thread_id": "t"}},  # the latest
                first,
                second,
                {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "no"}},
                {"configurable": {"thread_id": "nobody"}},
            ):
                trips.clear()
                got = await ours.aget_tuple(config)
                assert len(trips) == 1
                assert got == await theirs.aget_tuple(config)
        latest = await ours.aget_tuple({"configurable": {"thread_id": "t"}})
        assert latest is not None and latest.metadata["step"] == 2
        # Ordered as LangGraph orders them: an error (a special channel, index -1) first.
        assert [w[1:] for w in latest.pending_writes or []] == [("__error__", "boom"), ("x", 1)]
    finally:
        await ours.drain()
        await ours.conn.close()
