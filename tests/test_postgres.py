"""PostgreSQL storage against a real server (tests/pg.py starts one per session; each test gets
a fresh database). The run log and cache contract runs on both backends, so the two cannot drift
apart; the rest is what only PostgreSQL has: migrations under an advisory lock, one database
shared by several processes, and URLs whose passwords never show."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from orchestrator.errors import StorageError
from orchestrator.models.base import TokenUsage
from orchestrator.models.retry import FailedAttempt
from orchestrator.steps import Route, Step, StepResult
from orchestrator.storage import CachedAnswer, LeaseHolder, RunLog, RunRow, Storage, open_storage
from orchestrator.storage import postgres as postgres_module
from orchestrator.storage.liveness import HOST
from orchestrator.storage.postgres import PostgresStorage
from orchestrator.storage.postgres_errors import redact
from orchestrator.storage.postgres_migrations import MIGRATIONS
from orchestrator.storage.sqlite import SqliteStorage
from tests.pg import PgServer, free_port
from tests.test_storage import CHILD_PRELUDE, Clock, call, go, spawn_holder

REPO = Path(__file__).resolve().parent.parent

OpenLog = Callable[[Clock], AbstractAsyncContextManager[Storage]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> OpenLog:
    """Opens a storage with a settable clock: a state directory, or a fresh database."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")

    @asynccontextmanager
    async def opened(clock: Clock) -> AsyncIterator[Storage]:
        storage: SqliteStorage | PostgresStorage
        if request.param == "sqlite":
            storage = await SqliteStorage.open(tmp_path / "home")
            storage._runs._clock = clock
        else:
            storage = await PostgresStorage.open(url, clock)
        try:
            yield storage
        finally:
            await storage.close()

    return opened


# --- the contract, on both backends ----------------------------------------------------------


async def test_runs_and_calls_round_trip_and_survive_reopening(backend: OpenLog) -> None:
    clock = Clock()
    written = [
        call("s1", 0.25),
        call(None, 0.5, purpose="plan", usage=TokenUsage(7, 0, 3, 0, estimated=True)),
        call("answer", 1.0, purpose="node", finish_reason=None, started_at=1234.5, cached=True),
    ]
    async with backend(clock) as storage:
        log = storage.runs
        await log.start_run("r1", "wf", "/specs/wf.yaml", "the task")
        for record in written:
            await log.add_call("r1", record)
        clock.now = 1010.0
        await log.start_run("r2", "other", None, "second task")
        await log.finish_run("r1", "failed", "model exploded")
    async with backend(clock) as storage:
        log = storage.runs
        assert await log.calls("r1") == written
        assert await log.calls("r2") == []
        assert await log.count_cached_calls() == 1
        assert await log.get_run("r1") == RunRow(
            "r1", "wf", "/specs/wf.yaml", "the task", "failed", "model exploded", 1.75, 1000, 1010
        )
        assert await log.get_run("missing") is None
        assert [r.run_id for r in await log.recent_runs(10)] == ["r2", "r1"]
        assert [r.run_id for r in await log.recent_runs(1)] == ["r2"]
        clock.now = 1020.0
        await log.start_run("r1", "wf", "/specs/wf.yaml", "the task")
        resumed = await log.get_run("r1")
        assert resumed is not None
        assert (resumed.status, resumed.error, resumed.cost_usd) == ("running", None, 1.75)
        assert (resumed.created_at, resumed.updated_at) == (1000, 1020)
        await log.finish_run("r1", "interrupted", "stopped by SIGTERM")
        row = await log.get_run("r1")
        assert row is not None and (row.status, row.error) == ("interrupted", "stopped by SIGTERM")
        with pytest.raises(ValueError, match="unknown run status 'done'"):
            await log.finish_run("r1", "done", None)


async def test_attempts_and_step_spans_round_trip(backend: OpenLog) -> None:
    attempt = FailedAttempt(
        "thinker", "think-model", "solve", "s1", 1, 3, "status", "503 busy", 503, 10.0, 0.5, 1.25
    )
    step = Step("s1", "reason", "the task", ("s0",))
    route = Route(role="reason", profile="thinker", model="think-model", policy="static")
    async with backend(Clock()) as storage:
        log: RunLog = storage.runs
        await log.start_run("r1", "wf", None, "t")
        await log.add_attempt("r1", attempt)
        await log.step_started("r1", step, route, 10.0)
        await log.step_started("r1", Step("s2", "generate", "x"), route, 10.5)
        done = StepResult(step, route, "done", "out", cost_usd=0.5)
        await log.step_finished("r1", done, 12.0)
        assert await log.attempts("r1") == [attempt]
        spans = await log.steps("r1")
        assert [(s.step.id, s.started_at, s.finished_at, s.status) for s in spans] == [
            ("s1", 10.0, 12.0, "done"),
            ("s2", 10.5, None, "running"),
        ]
        assert spans[0].step.depends_on == ("s0",) and spans[0].cost_usd == 0.5


async def test_concurrent_appends_each_return_committed(backend: OpenLog) -> None:
    async with backend(Clock()) as storage:
        await storage.runs.start_run("r1", "wf", None, "t")

        async def add(i: int) -> None:
            await storage.runs.add_call("r1", call(f"s{i}"))

        await asyncio.gather(*(add(i) for i in range(200)))
        assert [c.step for c in await storage.runs.calls("r1")] == [f"s{i}" for i in range(200)]
        row = await storage.runs.get_run("r1")
        assert row is not None and row.cost_usd == pytest.approx(200 * 0.25)


async def test_lease_is_exclusive_renewable_releasable_and_expires(backend: OpenLog) -> None:
    clock = Clock()
    async with backend(clock) as storage:
        log = storage.runs
        assert await log.acquire_lease("r1", "a", 10) is None
        assert await log.acquire_lease("r1", "b", 10) == LeaseHolder("a", os.getpid(), HOST, 1010)
        assert await log.acquire_lease("r1", "a", 10) is None  # already ours
        assert await log.acquire_lease("r2", "b", 10) is None  # leases are per run
        clock.now = 1005
        assert await log.renew_lease("r1", "a", 10) is True
        assert await log.renew_lease("r1", "b", 10) is False
        clock.now = 1014
        assert await log.acquire_lease("r1", "b", 10) == LeaseHolder("a", os.getpid(), HOST, 1015)
        await log.release_lease("r1", "b")  # not b's: no effect
        assert await log.acquire_lease("r1", "b", 10) is not None
        await log.release_lease("r1", "a")
        assert await log.acquire_lease("r1", "b", 10) is None
        clock.now = 1024  # b stopped renewing: expired, a may take it and b has lost it
        assert await log.acquire_lease("r1", "a", 10) is None
        assert await log.renew_lease("r1", "b", 10) is False


async def test_writes_cancelled_anywhere_leave_the_run_log_usable(backend: OpenLog) -> None:
    async with backend(Clock()) as storage:
        await storage.runs.start_run("r1", "wf", None, "task")
        for turns in range(30):  # cancelled after 0, 1, 2, ... turns of the event loop
            writing = asyncio.create_task(storage.runs.finish_run("r1", "failed", "x"))
            renewing = asyncio.create_task(storage.runs.acquire_lease("r1", "a", 60))
            for _ in range(turns):
                await asyncio.sleep(0)
            writing.cancel()
            renewing.cancel()
            await asyncio.gather(writing, renewing, return_exceptions=True)
            await storage.runs.finish_run("r1", "completed", None)  # must not fail
            assert await storage.runs.acquire_lease("r1", "a", 60) is None
            await storage.runs.release_lease("r1", "a")
        row = await storage.runs.get_run("r1")
        assert row is not None and row.status == "completed"


async def test_many_coroutines_racing_for_one_lease_exactly_one_wins(backend: OpenLog) -> None:
    async with backend(Clock()) as storage:
        results = await asyncio.gather(
            *(storage.runs.acquire_lease("r1", f"owner{i}", 60) for i in range(20))
        )
        assert sum(r is None for r in results) == 1


async def test_response_cache_round_trip_stats_and_clear(backend: OpenLog) -> None:
    answer = CachedAnswer("the answer", "thinking", "stop", TokenUsage(10, 2, 5, 1), 0.75)
    async with backend(Clock()) as storage:
        cache = storage.cache
        await cache.check()
        assert await cache.get("k1") is None
        cache.put("k1", answer)
        assert await cache.get("k1") == answer  # seen before it is written
        cache.put("k2", answer)
        cache.put("k2", CachedAnswer("newer", None, "length", TokenUsage(1, 0, 1, 0), 0.1))
        stats = await cache.stats()
        assert stats.entries == 2 and stats.size_bytes > 0
        assert stats.location.startswith(storage.location)  # the file, or the database
        assert stats.oldest is not None and stats.newest is not None
    async with backend(Clock()) as storage:
        assert await storage.cache.get("k1") == answer
        newer = await storage.cache.get("k2")
        assert newer is not None and newer.content == "newer" and newer.trace is None
        assert await storage.cache.clear() == 2
        assert await storage.cache.get("k1") is None
        assert (await storage.cache.stats()).entries == 0


# --- open_storage on a URL ---------------------------------------------------------------------


@pytest.fixture
def pg_env(pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", pg_url)
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    return pg_url


async def test_300_concurrent_runs_share_one_pool(pg_env: str, tmp_path: Path) -> None:
    opened: set[int] = set()

    async def run(i: int) -> None:
        async with open_storage(tmp_path / "ignored") as storage:  # the URL wins
            opened.add(id(storage))
            await storage.runs.start_run(f"r{i}", "wf", None, "t")
            config: RunnableConfig = {"configurable": {"thread_id": f"r{i}", "checkpoint_ns": ""}}
            await storage.checkpointer.aput(config, empty_checkpoint(), {}, {})
            await storage.runs.add_call(f"r{i}", call())
            await storage.runs.finish_run(f"r{i}", "completed", None)

    await asyncio.gather(*(run(i) for i in range(300)))
    assert len(opened) == 1
    assert not (tmp_path / "ignored").exists() and not (tmp_path / "home").exists()
    async with open_storage() as storage:
        assert id(storage) not in opened  # the last user closed it; this is a new one
        runs = await storage.runs.recent_runs(1000)
        assert len(runs) == 300 and {(r.status, r.cost_usd) for r in runs} == {("completed", 0.25)}
        assert len([c async for c in storage.checkpointer.alist(None)]) == 300


async def test_of_two_processes_racing_for_a_lease_exactly_one_gets_it(
    pg_env: str, tmp_path: Path
) -> None:
    procs: list[asyncio.subprocess.Process] = []
    try:  # the children inherit ORCHESTRATOR_DATABASE_URL: the directory given is not used
        procs += await asyncio.gather(spawn_holder(tmp_path, "a"), spawn_holder(tmp_path, "b"))
        results = await asyncio.gather(*(go(p) for p in procs))
        winners = [p.pid for p, r in zip(procs, results, strict=True) if r is None]
        assert len(winners) == 1
        assert [r for r in results if r is not None] == winners  # the loser saw the winner
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            await proc.wait()


async def test_a_killed_holders_lease_and_run_are_taken_over_at_once_on_its_host(
    pg_env: str, tmp_path: Path
) -> None:
    proc = await spawn_holder(tmp_path, "a")
    try:
        assert await go(proc) is None
        async with open_storage() as storage:
            holder = await storage.runs.acquire_lease("r1", "b", 60)
            assert holder is not None and (holder.pid, holder.owner) == (proc.pid, "a")
            run = await storage.runs.get_run("r1")
            assert run is not None and run.status == "running"
            proc.kill()
            await proc.wait()
            run = await storage.runs.get_run("r1")
            assert run is not None and run.status == "interrupted"
            assert await storage.runs.acquire_lease("r1", "b", 60) is None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_connections_the_server_dropped_are_replaced_not_failed(
    pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As after a server restart: every pooled connection is gone. A connection idle for more
    # than FRESH_S is checked before use (0 here, so no waiting is needed to get there).
    monkeypatch.setattr(postgres_module, "FRESH_S", 0.0)
    storage = await PostgresStorage.open(pg_url)
    try:
        await storage.runs.start_run("r1", "wf", None, "t")
        await asyncio.gather(*(storage.runs.get_run("r1") for _ in range(5)))
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            dropped = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = %s and pid <> pg_backend_pid()",
                (pg_url.rsplit("/", 1)[1],),
            ).fetchall()
        assert dropped and all(ok for (ok,) in dropped)
        for _ in range(3):
            row = await storage.runs.get_run("r1")
            assert row is not None and row.status == "running"
        await storage.runs.add_call("r1", call())
        assert len(await storage.runs.calls("r1")) == 1
    finally:
        await storage.close()


def applied(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select name, count(*) from _migrations group by name order by min(applied_at)"
        ).fetchall()


@pytest.mark.slow
async def test_migrations_run_once_even_when_five_processes_open_at_once(pg_url: str) -> None:
    code = CHILD_PRELUDE + (
        "import asyncio, sys\n"
        "from orchestrator.storage.postgres import PostgresStorage\n"
        "async def main():\n"
        "    storage = await PostgresStorage.open(sys.argv[1])\n"
        "    await storage.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", code, pg_url, cwd=REPO)
        for _ in range(5)
    ]
    assert [await asyncio.wait_for(p.wait(), 60) for p in procs] == [0] * 5
    names = [m.__name__ for m in MIGRATIONS]
    assert applied(pg_url) == [(name, 1) for name in names]
    storage = await PostgresStorage.open(pg_url)  # and again: nothing left to apply
    await storage.close()
    assert applied(pg_url) == [(name, 1) for name in names]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select count(*) from checkpoint_migrations").fetchone() == (
            len(storage._saver.MIGRATIONS),
        )


# --- unusable databases: one StorageError line, naming the URL without its password -----------


async def open_error(url: str) -> str:
    with pytest.raises(StorageError) as caught:
        await PostgresStorage.open(url)
    message = caught.value.message
    assert "\n" not in message and "s3cret" not in message and "s3cret" not in repr(caught.value)
    assert caught.value.__cause__ is None
    return message


async def test_unreachable_server(pg_server: PgServer) -> None:
    port = free_port()  # nothing listens there
    message = await open_error(f"postgresql://app:s3cret@127.0.0.1:{port}/db")
    assert message.startswith(f"cannot use PostgreSQL at postgresql://app@127.0.0.1:{port}/db (")
    assert "check that the server is running" in message


async def test_missing_database_and_bad_urls(pg_server: PgServer) -> None:
    message = await open_error(pg_server.url("no_such_db", password="s3cret"))
    assert 'database "no_such_db" does not exist' in message
    message = await open_error("postgresql://app:s3cret@127.0.0.1:notaport/db")
    assert "is not a usable PostgreSQL URL" in message or "cannot use PostgreSQL" in message
    message = await open_error("postgresql://app@127.0.0.1/db?password=s3cret&sslmode=bogus")
    assert "sslmode" in message


async def test_a_user_without_create_rights_is_told_what_to_grant(pg_server: PgServer) -> None:
    name = pg_server.create_database()
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        conn.execute("create role limited login")
        conn.execute("revoke create on schema public from public")
    url = f"postgresql://limited:s3cret@127.0.0.1:{pg_server.port}/{name}"
    message = await open_error(url)
    assert message.startswith(f"PostgreSQL at {redact(url)} refused orchestrator's tables")
    assert "grant its user CREATE" in message


def test_redact_drops_passwords_only() -> None:
    assert redact("postgresql://u:p%40ss@h:5/db?sslmode=require") == (
        "postgresql://u@h:5/db?sslmode=require"
    )
    assert redact("postgres://u@h/db?password=x&application_name=o") == (
        "postgres://u@h/db?application_name=o"
    )
    assert redact("postgresql:///db") == "postgresql:///db"
