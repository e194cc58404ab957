"""The storage package on real SQLite files: run log, group commit, migrations from the old
run log, run leases across real processes, and one clear StorageError for every broken state
directory (including a disk that really fills up)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any, TypedDict

import aiosqlite
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph

from orchestrator.errors import StorageError
from orchestrator.models.base import CallRecord, TokenUsage
from orchestrator.storage import LeaseHolder, RunRow, open_storage, orchestrator_home
from orchestrator.storage import migrations as migrations_module
from orchestrator.storage.diagnose import storage_error
from orchestrator.storage.migrations import MIGRATIONS
from orchestrator.storage.sqlite_runlog import HOST, SqliteRunLog

REPO = Path(__file__).resolve().parent.parent
NAMES = [m.__name__ for m in MIGRATIONS]


def call(step: str | None = "s1", cost: float = 0.25, **fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "profile": "thinker",
        "model": "think-model",
        "purpose": "solve",
        "step": step,
        "usage": TokenUsage(100, 20, 50, 10),
        "cost_usd": cost,
        "latency_s": 1.5,
        "finish_reason": "stop",
        "started_at": 1000.0,
    }
    return CallRecord(**(values | fields))


class Clock:
    """A settable time.time for the run log, so expiry and ordering need no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def run_log(path: Path, clock: Clock | None = None) -> AsyncIterator[SqliteRunLog]:
    log = await SqliteRunLog.open(path, clock or Clock())
    try:
        yield log
    finally:
        await log.close()


# --- the run log --------------------------------------------------------------------------


async def test_runs_and_calls_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "runs.sqlite"
    written = [
        call("s1", 0.25),
        call(None, 0.5, purpose="plan", usage=TokenUsage(7, 0, 3, 0, estimated=True)),
        call("answer", 1.0, purpose="node", finish_reason=None, started_at=1234.5),
    ]
    async with run_log(path, clock) as log:
        await log.start_run("r1", "wf", "/specs/wf.yaml", "the task")
        for record in written:
            await log.add_call("r1", record)
        clock.now = 1010.0
        await log.start_run("r2", "other", None, "second task")
        await log.finish_run("r1", "failed", "model exploded")
    async with run_log(path, clock) as log:
        assert await log.calls("r1") == written
        assert await log.calls("r2") == []
        assert await log.get_run("r1") == RunRow(
            "r1", "wf", "/specs/wf.yaml", "the task", "failed", "model exploded", 1.75, 1000, 1010
        )
        assert await log.get_run("missing") is None
        assert [r.run_id for r in await log.recent_runs(10)] == ["r2", "r1"]
        assert [r.run_id for r in await log.recent_runs(1)] == ["r2"]
        # Resuming marks it running again and keeps what it paid before.
        clock.now = 1020.0
        await log.start_run("r1", "wf", "/specs/wf.yaml", "the task")
        resumed = await log.get_run("r1")
        assert resumed is not None
        assert (resumed.status, resumed.error, resumed.cost_usd) == ("running", None, 1.75)
        assert (resumed.created_at, resumed.updated_at) == (1000, 1020)


async def test_finish_run_accepts_interrupted_and_refuses_unknown_statuses(
    tmp_path: Path,
) -> None:
    async with run_log(tmp_path / "runs.sqlite") as log:
        await log.start_run("r1", "wf", None, "t")
        await log.finish_run("r1", "interrupted", "stopped by SIGTERM")
        row = await log.get_run("r1")
        assert row is not None and (row.status, row.error) == ("interrupted", "stopped by SIGTERM")
        with pytest.raises(ValueError, match="unknown run status 'done'"):
            await log.finish_run("r1", "done", None)


async def test_concurrent_add_calls_share_commits_and_each_returns_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    async with run_log(path) as log:
        await log.start_run("r1", "wf", None, "t")
        statements: list[str] = []
        # White-box: the trace callback sees every statement the shared connection runs.
        await log._db.set_trace_callback(statements.append)

        async def add(i: int) -> None:
            await log.add_call("r1", call(f"s{i}"))
            # Returned: so the row is committed, visible to another connection right now.
            assert query(path, f"select count(*) from calls where step = 's{i}'") == [(1,)]

        await asyncio.gather(*(add(i) for i in range(200)))
        commits = sum(s.strip().lower() == "commit" for s in statements)
        assert 1 <= commits <= 3, f"200 concurrent calls took {commits} commits"
        assert [c.step for c in await log.calls("r1")] == [f"s{i}" for i in range(200)]


# --- sharing -------------------------------------------------------------------------------


async def test_300_concurrent_runs_share_one_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    assert orchestrator_home() == tmp_path / "home"
    opened: set[int] = set()

    async def run(i: int) -> None:
        async with open_storage() as storage:
            opened.add(id(storage))
            await storage.runs.start_run(f"r{i}", "wf", None, "t")
            config: RunnableConfig = {"configurable": {"thread_id": f"r{i}", "checkpoint_ns": ""}}
            await storage.checkpointer.aput(config, empty_checkpoint(), {}, {})
            await storage.runs.add_call(f"r{i}", call())
            await storage.runs.finish_run(f"r{i}", "completed", None)

    # A connection per run would fail here with "database is locked".
    await asyncio.gather(*(run(i) for i in range(300)))
    assert len(opened) == 1
    async with open_storage(tmp_path / "home") as storage:
        assert id(storage) not in opened  # the last user closed it; this is a new one
        runs = await storage.runs.recent_runs(1000)
        assert len(runs) == 300
        assert {(r.status, r.cost_usd) for r in runs} == {("completed", 0.25)}
        saved = [c async for c in storage.checkpointer.alist(None)]
        assert len(saved) == 300


class State(TypedDict):
    n: int


async def test_a_langgraph_graph_checkpoints_and_resumes_through_storage(tmp_path: Path) -> None:
    graph = StateGraph(State)
    graph.add_node("inc", lambda state: {"n": state["n"] + 1})
    graph.add_edge(START, "inc")
    graph.add_edge("inc", END)
    config: RunnableConfig = {"configurable": {"thread_id": "r1"}}
    async with open_storage(tmp_path) as storage:
        compiled = graph.compile(checkpointer=storage.checkpointer, interrupt_before=["inc"])
        await compiled.ainvoke({"n": 1}, config)
        assert (await compiled.aget_state(config)).next == ("inc",)
    async with open_storage(tmp_path) as storage:  # another process, later: picks up from there
        compiled = graph.compile(checkpointer=storage.checkpointer, interrupt_before=["inc"])
        assert await compiled.ainvoke(None, config) == {"n": 2}


async def test_storage_is_closed_when_its_last_user_leaves(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "home", target_is_directory=True)
    async with open_storage(tmp_path / "home") as first:
        async with open_storage(tmp_path / "link") as second:
            assert second is first  # one location, however it is spelled
        await first.runs.start_run("r1", "wf", None, "t")  # still open for the first user
    with pytest.raises(ValueError, match="no active connection"):
        await first.runs.start_run("r2", "wf", None, "t")


# --- migrations ----------------------------------------------------------------------------

# The schema orchestrator/runlog.py created (its `_m001_runs_and_calls`), kept verbatim here so
# the upgrade stays tested after that module is gone.
OLD_SCHEMA = """
create table runs (
    run_id text primary key, workflow text not null, workflow_path text, task text not null,
    status text not null, error text, pid integer,
    created_at real not null, updated_at real not null
);
create table calls (
    id integer primary key, run_id text not null references runs(run_id),
    profile text not null, model text not null, purpose text not null,
    input_tokens integer not null, cached_input_tokens integer not null,
    output_tokens integer not null, reasoning_tokens integer not null,
    cost_usd real not null, latency_s real not null, finish_reason text,
    created_at real not null
);
create index calls_by_run on calls(run_id);
pragma user_version = 1;
"""


def query(path: Path, sql: str) -> list[Any]:
    """Read a database the way another process would: its own connection, closed after."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def make_old_runlog(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "insert into runs values ('old', 'wf', null, 't', 'completed', null, null, 1, 2)"
        )
        db.execute(  # killed while the old code ran it: no host recorded, judged as ours
            "insert into runs values ('killed', 'wf', null, 't', 'running', null, ?, 5, 5)",
            (dead_pid(),),
        )
        for purpose, cost in [("plan", 0.1), ("solve:s1", 0.2), ("node:answer", 0.3)]:
            db.execute(
                "insert into calls values (null, 'old', 'p', 'm', ?, 10, 2, 5, 1, ?, 0.5, "
                "'stop', 3)",
                (purpose, cost),
            )
        db.execute(
            "insert into calls values (null, 'old', 'p', 'm', 'synthesize', 1, 0, 1, 0, 0.4, "
            "0.5, null, 4)"
        )
    db.close()


def applied(path: Path) -> list[str]:
    return [name for (name,) in query(path, "select name from _migrations order by rowid")]


async def test_a_run_log_from_the_old_code_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    make_old_runlog(path)
    async with run_log(path) as log:
        old = await log.calls("old")
        assert [(c.purpose, c.step) for c in old] == [
            ("plan", None),
            ("solve", "s1"),
            ("node", "answer"),
            ("synthesize", None),
        ]
        assert old[1] == CallRecord(
            "p", "m", "solve", "s1", TokenUsage(10, 2, 5, 1, False), 0.2, 0.5, "stop", 0.0
        )
        row = await log.get_run("old")
        assert row is not None and row.cost_usd == pytest.approx(1.0)
        assert [(r.run_id, r.status) for r in await log.recent_runs(5)] == [
            ("killed", "interrupted"),
            ("old", "completed"),
        ]
        await log.add_call("old", call("s2", 1.0))  # the new columns take new rows
        assert (await log.calls("old"))[-1] == call("s2", 1.0)
    # The old code's one migration is adopted as applied; the later ones ran once each.
    assert applied(path) == NAMES


async def test_each_migration_runs_once_in_order_inside_a_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    async with run_log(path):
        pass
    assert applied(path) == NAMES
    # What the old runlog.py reads: it must find this schema current, not recreate it.
    assert query(path, "pragma user_version") == [(1,)]

    ran: list[str] = []

    async def m900_notes(db: aiosqlite.Connection) -> None:
        ran.append("m900")
        await db.execute("create table notes (text text)")

    async def m901_broken(db: aiosqlite.Connection) -> None:
        await db.execute("create table half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*MIGRATIONS, m900_notes, m901_broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        await SqliteRunLog.open(path)
    # m900 committed on its own; m901's table was rolled back with it and is not recorded.
    assert applied(path) == [*NAMES, "m900_notes"]
    tables = {name for (name,) in query(path, "select name from sqlite_master")}
    assert "notes" in tables and "half_done" not in tables

    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*MIGRATIONS, m900_notes])
    async with run_log(path):
        pass
    assert ran == ["m900"]


# --- leases --------------------------------------------------------------------------------


async def test_lease_is_exclusive_renewable_releasable_and_expires(tmp_path: Path) -> None:
    clock = Clock()
    async with run_log(tmp_path / "runs.sqlite", clock) as log:
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


# Child processes load the storage package without running orchestrator/__init__.py, which
# imports the whole framework (about a second per child); storage needs nothing from it.
CHILD_PRELUDE = f"""
import sys, types
package = types.ModuleType("orchestrator")
package.__path__ = [{str(REPO / "orchestrator")!r}]
sys.modules["orchestrator"] = package
"""

HOLDER = (
    CHILD_PRELUDE
    + """
import asyncio, json, os, sys
from pathlib import Path
from orchestrator.storage import open_storage

async def main() -> None:
    async with open_storage(Path(sys.argv[1])) as storage:
        await storage.runs.start_run("r1", "wf", None, "t")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "go"
        holder = await storage.runs.acquire_lease("r1", sys.argv[2], 3600)
        print(json.dumps(None if holder is None else holder.pid), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # hold the lease until stdin closes

asyncio.run(main())
"""
)


async def spawn_holder(home: Path, owner: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(home), owner,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"ready\n"
    return proc


async def go(proc: asyncio.subprocess.Process) -> int | None:
    """Tell a holder to take the lease; None if it did, else the pid it found holding it."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    line = (await proc.stdout.readline()).decode().strip()
    return None if line == "null" else int(line)


async def test_of_two_processes_racing_for_a_lease_exactly_one_gets_it(tmp_path: Path) -> None:
    procs: list[asyncio.subprocess.Process] = []
    try:
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


async def test_a_killed_holders_lease_and_run_are_taken_over_at_once(tmp_path: Path) -> None:
    proc = await spawn_holder(tmp_path, "a")
    try:
        assert await go(proc) is None
        async with open_storage(tmp_path) as storage:
            holder = await storage.runs.acquire_lease("r1", "b", 60)
            assert holder is not None and (holder.pid, holder.owner) == (proc.pid, "a")
            run = await storage.runs.get_run("r1")
            assert run is not None and run.status == "running"
            proc.kill()
            await proc.wait()  # reaped: its pid no longer exists (a zombie would still)
            run = await storage.runs.get_run("r1")
            assert run is not None and run.status == "interrupted"
            assert await storage.runs.acquire_lease("r1", "b", 60) is None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- broken state directories --------------------------------------------------------------


async def open_error(home: Path) -> StorageError:
    with pytest.raises(StorageError) as caught:
        async with open_storage(home):
            pass
    assert caught.value.exit_code == 2
    return caught.value


async def test_home_that_is_or_lies_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    error = await open_error(blocker / "home")
    assert str(error) == (
        f"cannot create the state directory {blocker}/home: {blocker} is a file, not a "
        "directory: set ORCHESTRATOR_HOME to a directory (or move the file aside)"
    )
    error = await open_error(blocker)
    assert str(error).startswith(f"{blocker} is a file, not a directory: move it aside")


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make `directory` unwritable for this process, even as root (where modes are ignored)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    # Root: the immutable attribute binds root too; it needs chattr and a file system with it.
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", directory], capture_output=True).returncode:
        pytest.skip("running as root without a usable chattr +i: cannot make a dir unwritable")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", directory], check=True)


async def test_unwritable_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with unwritable(home):
        assert not os.access(home, os.W_OK)
        error = await open_error(home)
    assert str(error) == (
        f"the state directory {home} is not writable (Permission denied): make it writable, "
        "or set ORCHESTRATOR_HOME to a writable directory"
    )
    assert error.path == str(home)


@pytest.mark.parametrize(
    ("name", "lost"),
    [
        ("runs.sqlite", "its run history is lost"),
        ("checkpoints.sqlite", "runs saved in it can no longer be resumed"),
    ],
)
async def test_corrupt_database_is_reported_at_open(tmp_path: Path, name: str, lost: str) -> None:
    async with open_storage(tmp_path):
        pass  # both files exist and are valid
    (tmp_path / name).write_bytes(b"\x13garbage, not SQLite at all\x00" * 200)
    for suffix in ("-wal", "-shm"):
        (tmp_path / (name + suffix)).unlink(missing_ok=True)
    error = await open_error(tmp_path)
    assert str(error) == (
        f"{tmp_path / name} is not a valid SQLite database (file is not a database): move it "
        f"aside or delete it ({lost}), then retry"
    )
    assert error.path == str(tmp_path / name)
    (tmp_path / name).unlink()  # doing what it says works
    async with open_storage(tmp_path) as storage:
        assert await storage.runs.recent_runs(5) == []


FILL_DISK = (
    CHILD_PRELUDE
    + """
import asyncio, resource, signal, sys
from pathlib import Path
from langgraph.checkpoint.base import empty_checkpoint
from orchestrator.errors import StorageError
from orchestrator.models.base import CallRecord, TokenUsage
from orchestrator.storage import open_storage

async def main() -> None:
    async with open_storage(Path(sys.argv[1])) as storage:
        await storage.runs.start_run("r1", "wf", None, "t")
        if len(sys.argv) > 2:  # cap every file this process writes from here on
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail writes with EFBIG, don't die
            limit = int(sys.argv[2])
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        big = "x" * 200_000
        call = CallRecord("p", "m", "solve", "s1", TokenUsage(), 0.0, 0.0, big)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"big": big}
        config = {"configurable": {"thread_id": "r1", "checkpoint_ns": ""}}
        for write in (lambda: storage.runs.add_call("r1", call),
                      lambda: storage.checkpointer.aput(config, checkpoint, {}, {})):
            try:
                for _ in range(100):
                    await write()
            except StorageError as e:
                print(e, flush=True)

asyncio.run(main())
"""
)


def fill_disk_messages(command: list[str]) -> list[str]:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


async def test_file_size_limit_while_writing_names_the_file(tmp_path: Path) -> None:
    # The kernel fails writes past RLIMIT_FSIZE with EFBIG, which SQLite reports as a write
    # error (SQLITE_IOERR_WRITE), as it does for a quota: the message must cover both.
    messages = fill_disk_messages([sys.executable, "-c", FILL_DISK, str(tmp_path), "1000000"])
    assert messages == [
        f"cannot write {tmp_path / name} (disk I/O error): the disk may be full, over a quota "
        "or failing: free some disk space (or check the disk), then retry"
        for name in ("runs.sqlite", "checkpoints.sqlite")
    ]


async def test_a_full_disk_names_the_file_and_says_free_some_space(tmp_path: Path) -> None:
    # A really full disk (ENOSPC, SQLITE_FULL): a 1 MiB tmpfs in a private mount namespace.
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("mounting a small tmpfs needs root and unshare")
    probe = subprocess.run(
        [unshare, "-m", "mount", "-t", "tmpfs", "tmpfs", str(tmp_path)], capture_output=True
    )
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    script = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" -c "$3" "$1"'
    command = [unshare, "-m", "sh", "-c", script, "sh", str(tmp_path), sys.executable, FILL_DISK]
    assert fill_disk_messages(command) == [
        f"cannot write {tmp_path / name}: the disk is full (database or disk is full): free "
        "some disk space, then retry"
        for name in ("runs.sqlite", "checkpoints.sqlite")
    ]


def test_only_environmental_sqlite_failures_become_storage_errors(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "x.sqlite") as db:
        db.execute("create table t (x text unique)")
        db.execute("insert into t values ('a')")
        with pytest.raises(sqlite3.IntegrityError) as bug:
            db.execute("insert into t values ('a')")
        assert storage_error(bug.value, tmp_path / "x.sqlite") is None  # a bug stays a bug
        db.execute("pragma max_page_count = 3")  # SQLite's own SQLITE_FULL, without a disk
        with pytest.raises(sqlite3.OperationalError) as full:
            db.execute("insert into t values (?)", ("y" * 100_000,))
    db.close()
    error = storage_error(full.value, tmp_path / "x.sqlite")
    assert error is not None and "free some disk space" in str(error)


async def test_a_write_cancelled_while_it_begins_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """A run cancelled while its write waits for BEGIN (a DELETE to the server, Ctrl-C) must not
    leave the shared connection inside a transaction: later writes would all fail."""
    async with open_storage(tmp_path) as storage:
        await storage.runs.start_run("r1", "wf", None, "task")
        for _ in range(20):  # cancel at the first, second, ... point it can be cancelled
            writing = asyncio.create_task(storage.runs.finish_run("r1", "failed", "x"))
            await asyncio.sleep(0)
            writing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writing
            await storage.runs.finish_run("r1", "completed", None)  # must not fail
        row = await storage.runs.get_run("r1")
        assert row is not None and row.status == "completed"


def test_first_opens_of_a_new_home_from_many_threads_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL takes its lock outside SQLite's busy handler: threads (each
    with its own event loop, as LangChain's Runnable.batch runs) opening one new home at once
    failed now and then with "database is locked". Rounds of 6 at once make a miss likely."""
    from orchestrator.storage.sqlite import SqliteStorage

    async def open_and_use(home: Path) -> None:
        storage = await SqliteStorage.open(home)
        try:
            await storage.runs.start_run(f"r-{threading.get_ident()}", "wf", None, "task")
            await storage.cache.stats()
        finally:
            await storage.close()

    def opener(home: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            start.wait()
            asyncio.run(open_and_use(home))
        except BaseException as exc:  # reported below, with the round
            errors.append(exc)

    for round_ in range(60):
        home, errors = tmp_path / f"home{round_}", []
        start = threading.Barrier(6)
        threads = [threading.Thread(target=opener, args=(home, start, errors)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}: {errors[0]!r}"
        with closing(sqlite3.connect(home / "runs.sqlite")) as db:
            assert db.execute("select count(*) from runs").fetchone() == (6,)


async def _open_and_start(home: Path, run_id: str) -> None:
    async with open_storage(home) as storage:
        await storage.runs.start_run(run_id, "wf", None, "task")


def _child_opens(home: Path) -> None:
    asyncio.run(_open_and_start(home, "child"))


def test_a_forked_child_opens_storage_after_its_parent(tmp_path: Path) -> None:
    """The state directory is checked on a thread kept for the process; a child forked after
    the parent made that thread has none of it, and must not hand its check to it (it would
    wait forever)."""
    import multiprocessing

    asyncio.run(_open_and_start(tmp_path / "parent", "parent"))
    child = multiprocessing.get_context("fork").Process(
        target=_child_opens, args=(tmp_path / "child",)
    )
    child.start()
    child.join(timeout=30)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0
    assert query(tmp_path / "child" / "runs.sqlite", "select run_id from runs") == [("child",)]
