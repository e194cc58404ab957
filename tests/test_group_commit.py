"""The checkpointers' group commit: writes waiting together share one transaction (SQLite) or
one pipeline (PostgreSQL's pending writes), each writer returns once its own rows are committed,
order is kept, and a failed commit fails exactly the writes that were in it."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from orchestrator.storage.postgres import PostgresStorage
from orchestrator.storage.sqlite import CHECKPOINTS_FILE, CheckpointSaver


def config(thread: str, checkpoint_id: str = "c0") -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    }


async def open_counting(path: Path) -> tuple[CheckpointSaver, list[str]]:
    """A saver whose commits are counted: SQLite's trace callback sees every statement its
    connection runs, whoever runs it."""
    saver = await CheckpointSaver.open(path)
    commits: list[str] = []

    def trace(statement: str) -> None:
        if statement.strip().lower() == "commit":
            commits.append(statement)

    await saver.conn.set_trace_callback(trace)
    return saver, commits


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def test_writes_waiting_together_share_commits_and_all_land(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINTS_FILE
    saver, commits = await open_counting(path)
    try:
        await asyncio.gather(
            *(saver.aput_writes(config(f"t{i}"), [("x", i), ("y", -i)], "task") for i in range(50)),
            *(saver.aput(config(f"t{i}"), empty_checkpoint(), {}, {}) for i in range(50)),
        )
        assert len(commits) < 10  # 100 writes, each of which LangGraph commits on its own
        for i in (0, 17, 49):
            state = await saver.aget_tuple({"configurable": {"thread_id": f"t{i}"}})
            assert state is not None and state.parent_config == config(f"t{i}")
    finally:
        await saver.drain()
        await saver.conn.close()
    assert rows(path, "select count(*) from writes") == [(100,)]
    assert rows(path, "select count(*) from checkpoints") == [(50,)]
    got = rows(path, "select thread_id, idx, channel from writes where thread_id = 't7' order by 2")
    assert got == [("t7", 0, "x"), ("t7", 1, "y")]


async def test_writes_to_one_key_in_one_commit_keep_their_order(tmp_path: Path) -> None:
    # An error write (a special channel: replaced) after a first one, in the same transaction.
    saver, commits = await open_counting(tmp_path / CHECKPOINTS_FILE)
    try:
        first = saver.aput_writes(config("t"), [("__error__", "first")], "task")
        second = saver.aput_writes(config("t"), [("__error__", "second")], "task")
        await asyncio.gather(first, second)
        assert len(commits) == 1
    finally:
        await saver.drain()
        await saver.conn.close()
    values = rows(tmp_path / CHECKPOINTS_FILE, "select type, value from writes")
    assert len(values) == 1 and saver.serde.loads_typed(values[0]) == "second"


async def test_a_failed_commit_fails_its_writers_and_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / CHECKPOINTS_FILE
    saver, _ = await open_counting(path)
    try:
        # A trigger that refuses one thread's rows, as a full disk refuses a transaction.
        await saver.conn.execute(
            "create trigger refuse before insert on writes when new.thread_id = 'bad' "
            "begin select raise(abort, 'refused'); end"
        )
        await saver.conn.commit()
        results = await asyncio.gather(
            saver.aput_writes(config("good"), [("x", 1)], "task"),
            saver.aput_writes(config("bad"), [("x", 2)], "task"),
            return_exceptions=True,
        )
        # One transaction: both writers were in it, both are told it failed, nothing landed.
        assert [str(r) for r in results] == ["refused", "refused"], results
        assert rows(path, "select count(*) from writes") == [(0,)]
        await saver.aput_writes(config("good"), [("x", 1)], "task")  # the next commit works
    finally:
        await saver.drain()
        await saver.conn.close()
    assert rows(path, "select thread_id from writes") == [("good",)]


async def test_a_cancelled_writer_s_rows_are_still_committed(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINTS_FILE
    saver, _ = await open_counting(path)
    try:
        write = asyncio.create_task(saver.aput(config("t"), empty_checkpoint(), {}, {}))
        await asyncio.sleep(0)  # queued, the writer started
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        await saver.drain()
    finally:
        await saver.conn.close()
    assert rows(path, "select thread_id from checkpoints") == [("t",)]


def counting_batches(saver: Any) -> list[int]:
    """Count the batches a saver writes (each one pipeline, or one transaction): the writes
    each one takes once its transaction is open."""
    batches: list[int] = []
    take = saver._take_batch

    def counted() -> Any:
        batch = take()
        batches.append(len(batch))
        return batch

    saver._take_batch = counted
    return batches


async def test_postgres_pending_writes_share_round_trips_and_all_land(pg_url: str) -> None:
    storage = await PostgresStorage.open(pg_url)
    try:
        saver = storage._saver
        batches = counting_batches(saver)
        await asyncio.gather(
            *(saver.aput_writes(config(f"t{i}"), [("x", i), ("y", -i)], "task") for i in range(50))
        )
        assert sum(batches) == 50 and len(batches) < 10
        state = await saver.aget_tuple(config("t7"))
        # the writes belong to checkpoint c0, which was never saved: read them back directly
        async with saver._cursor() as cur:
            await cur.execute(
                "select channel, idx from checkpoint_writes where thread_id = 't7' order by idx"
            )
            got = [(row["channel"], row["idx"]) for row in await cur.fetchall()]
            await cur.execute("select count(*) as n from checkpoint_writes")
            total = (await cur.fetchone() or {})["n"]
    finally:
        await storage.close()
    assert state is None and got == [("x", 0), ("y", 1)] and total == 100


async def test_postgres_a_failed_round_fails_its_writers_and_the_next_works(pg_url: str) -> None:
    storage = await PostgresStorage.open(pg_url)
    try:
        saver = storage._saver
        async with saver._cursor() as cur:  # refuse one thread's rows, as a broken server would
            await cur.execute(
                "create function refuse() returns trigger language plpgsql as $$ begin "
                "if new.thread_id = 'bad' then raise exception 'refused'; end if; "
                "return new; end $$"
            )
            await cur.execute(
                "create trigger refuse before insert on checkpoint_writes "
                "for each row execute function refuse()"
            )
        batches = counting_batches(saver)
        results = await asyncio.gather(
            saver.aput_writes(config("bad"), [("x", 2)], "task"),
            saver.aput_writes(config("good"), [("x", 1)], "task"),
            return_exceptions=True,
        )
        assert batches == [2]  # both in one round, and both told it failed
        assert all(isinstance(r, Exception) and "refused" in str(r) for r in results), results
        await saver.aput_writes(config("later"), [("x", 3)], "task")
        async with saver._cursor() as cur:
            await cur.execute("select thread_id from checkpoint_writes order by thread_id")
            kept = [row["thread_id"] for row in await cur.fetchall()]
    finally:
        await storage.close()
    assert kept == ["later"]  # all of the failed round or none of it: none
