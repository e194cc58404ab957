"""Every command on PostgreSQL (ORCHESTRATOR_DATABASE_URL), as a user runs it: the real CLI in
subprocesses against the scripted server and a real PostgreSQL server (tests/pg.py). Nothing is
written under ORCHESTRATOR_HOME, and the URL's password never shows in any output.

Shared resume: worker A, on another host (its own UTS namespace, so its pid cannot be judged
from here), is killed with SIGKILL mid-run; its lease holds until it expires; then two workers
resume the run at once: exactly one runs it, the other is refused, and nothing is paid twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault
from tests.pg import PgServer, free_port
from tests.test_durable import PLAN, WORKFLOW, solve_calls

PASSWORD = "s3cret-pw"


class Gate:
    """Holds the scripted server's answers to the slow subproblem: the first `held` arrivals
    wait for their event (set by the test, or at teardown); later ones pass at once."""

    def __init__(self, held: int) -> None:
        self.events = [threading.Event() for _ in range(held)]
        self.arrivals = 0
        self.lock = threading.Lock()

    def latency(self, body: dict[str, Any]) -> float:
        if "slow deep part" not in str(body["messages"][-1]):
            return 0.0
        with self.lock:
            self.arrivals += 1
            mine = self.arrivals
        if mine <= len(self.events):
            self.events[mine - 1].wait(120)
        return 0.0


@pytest.fixture
def pg(pg_url: str, openai_env: FakeOpenAI, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The database URL (with a password, which trust auth ignores) as the CLI's environment."""
    url = pg_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    openai_env.configure_model("think-model", reasoning=True)
    openai_env.set_plan(PLAN)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    yield {"ORCHESTRATOR_DATABASE_URL": url}
    assert not (tmp_path / "home").exists(), "something was written to ORCHESTRATOR_HOME"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = run_cli(*args, **env)
    assert PASSWORD not in done.stdout + done.stderr
    return done


def query(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.mark.slow
def test_run_runs_resume_show_and_cache_on_postgres(
    pg: dict[str, str], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    openai_env.enqueue(Fault(status=500), model="think-model")  # retries: 0, so the run fails
    wf = str(tmp_path / "wf.yaml")
    failed = cli(pg, "run", wf, "--input", "task", "--run-id", "r1", "--cache", "--json")
    assert failed.returncode == 1, failed.stderr
    listed = json.loads(cli(pg, "runs", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [("r1", "failed")]

    before = len(openai_env.requests)
    resumed = cli(pg, "-vv", "resume", "r1", "--json")  # debug logging: still no password
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
    assert not any(r.is_plan for r in openai_env.requests[before:])
    for text in ("quick part one", "quick part two", "final part"):
        assert len(solve_calls(openai_env, text)) == 1  # never paid twice
    assert len(solve_calls(openai_env, "slow deep part")) == 2  # the 500, then the answer

    shown = json.loads(cli(pg, "show", "r1", "--json").stdout)
    assert shown["run_id"] == "r1" and shown["status"] == "completed"
    missing = cli(pg, "show", "nope")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("`orchestrator runs` lists them")
    assert "postgresql://postgres@127.0.0.1" in missing.stderr

    stats = json.loads(cli(pg, "cache", "stats", "--json").stdout)
    assert stats["location"] == pg["ORCHESTRATOR_DATABASE_URL"].replace(f":{PASSWORD}", "")
    assert stats["entries"] == 3 and stats["size_bytes"] > 0  # the first run: plan, fast1, fast2
    cleared = cli(pg, "cache", "clear")
    assert (
        cleared.returncode == 0 and f"removed {stats['entries']} cached answers" in cleared.stdout
    )
    gone = cli(pg, "resume", "nope")
    assert gone.returncode == 2 and "no run with id nope" in gone.stderr


@pytest.mark.slow
def test_batch_and_eval_on_postgres(
    pg: dict[str, str], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "input": "task a"}\n{"id": "b", "input": "task b"}\n')
    out = tmp_path / "results.jsonl"
    wf = str(tmp_path / "wf.yaml")
    done = cli(pg, "batch", wf, "--input", str(tasks), "--out", str(out))
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["id"], r["status"]) for r in results) == [
        ("a", "completed"),
        ("b", "completed"),
    ]
    url = pg["ORCHESTRATOR_DATABASE_URL"]
    ids = {r["run_id"] for r in results}
    assert {row[0] for row in query(url, "select run_id from runs")} == ids
    before = len(openai_env.requests)
    again = cli(pg, "batch", wf, "--input", str(tasks), "--out", str(out))
    assert again.returncode == 0 and len(openai_env.requests) == before  # settled: skipped

    openai_env.set_plan({"subproblems": [{"id": "a", "kind": "generate", "task": "x"}]})
    data = tmp_path / "data.jsonl"
    data.write_text('{"id": "q1", "input": "one?", "target": "ok"}\n')
    evaluated = cli(pg, "eval", wf, "--dataset", str(data), "--out", str(tmp_path / "ev"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert set(json.loads(evaluated.stdout)["policies"]) == {"all-generate", "all-reason", "label"}
    eval_runs = query(url, "select count(*) from runs where run_id like 'eval-%%'")
    assert eval_runs == [(3,)]
    assert not list((tmp_path / "ev").rglob("*.sqlite"))  # the runs went to the database


def test_serve_runs_api_on_postgres(
    pg: dict[str, str], openai_env: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_serve_support import follow, serving

    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", pg["ORCHESTRATOR_DATABASE_URL"])
    served = tmp_path / "served.yaml"
    served.write_text(WORKFLOW)
    with serving([served]) as base:
        r = httpx.post(f"{base}/runs", json={"workflow": "served", "input": "the task"})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        events = follow(base, run_id)
        assert events[-1][2]["result"]["status"] == "completed"
        listed = httpx.get(f"{base}/runs").json()
        assert run_id in json.dumps(listed)
    rows = query(
        pg["ORCHESTRATOR_DATABASE_URL"], "select status from runs where run_id = %s", run_id
    )
    assert rows == [("completed",)]


# --- unusable databases ----------------------------------------------------------------------


def test_unreachable_or_bad_database_is_one_line_exit_2_before_any_call(
    pg_server: PgServer, openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    port = free_port()
    unreachable = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/db"
    for url, expected in [
        (unreachable, f"cannot use PostgreSQL at postgresql://app@127.0.0.1:{port}/db ("),
        (pg_server.url("missing_db", PASSWORD), 'database "missing_db" does not exist'),
        (f"mysql://app:{PASSWORD}@127.0.0.1/db", "is not a usable PostgreSQL URL"),
    ]:
        run = ("run", str(tmp_path / "wf.yaml"), "--input", "task")
        serve = ("serve", str(tmp_path / "wf.yaml"), "--port", "0")
        for args in [("runs",)] + [run, serve] * (url == unreachable):
            done = cli({"ORCHESTRATOR_DATABASE_URL": url}, *args)
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and expected in lines[0], done.stderr
            assert "Traceback" not in done.stderr
    assert openai_env.requests == []  # refused before any model call


# --- two workers sharing one database --------------------------------------------------------


def checkpointed(url: str, run_id: str) -> set[str]:
    """The subproblem ids whose results the run's checkpoint holds (as in test_durable)."""
    try:
        rows = query(
            url,
            "select blob from checkpoint_writes where thread_id = %s and channel = '__return__'",
            run_id,
        )
    except psycopg.errors.UndefinedTable:
        return set()
    heads = [bytes(blob)[:24] for (blob,) in rows if blob is not None]
    return {s for s in ("fast1", "fast2", "slow", "last") if any(s.encode() in h for h in heads)}


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling interval, not synchronisation: the condition decides


def on_other_host(command: list[str], host: str) -> list[str]:
    """`command` in its own UTS namespace named `host`: another machine, as far as orchestrator
    can tell (its pid means nothing here, so only its lease's expiry frees the run)."""
    unshare = ["unshare", "-u"] if os.geteuid() == 0 else ["unshare", "-r", "-u"]
    return [*unshare, "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]


@pytest.mark.slow
def test_a_killed_workers_run_is_resumed_by_exactly_one_other_worker(
    pg: dict[str, str], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    url = pg["ORCHESTRATOR_DATABASE_URL"]
    gate = Gate(held=2)  # A's slow call (A dies holding it), then the winner's (until released)
    openai_env.configure_model("think-model", reasoning=True, latency=gate.latency)
    env = {**os.environ, **pg, "ORCHESTRATOR_PLAIN": "1", "ORCHESTRATOR_LEASE_TTL_S": "2"}
    run = [sys.executable, "-m", "orchestrator.cli", "run", str(tmp_path / "wf.yaml"),
           "--input", "task", "--run-id", "shared"]  # fmt: skip
    worker_a = subprocess.Popen(
        on_other_host(run, "worker-a"), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: "fast2" in checkpointed(url, "shared") or worker_a.poll() is not None,
                 "worker A to checkpoint fast2")  # fmt: skip
        assert worker_a.poll() is None, worker_a.communicate()[1]
        assert gate.arrivals == 1  # the slow call is in flight
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(30)
    finally:
        if worker_a.poll() is None:
            worker_a.kill()
            worker_a.wait(30)
        gate.events[0].set()
    (host, expires_at), *_ = query(
        url, "select host, expires_at from leases where run_id = 'shared'"
    )
    assert host == "worker-a"  # A's lease outlives A: another host's pid cannot be checked
    wait_for(lambda: time.time() > expires_at, "the lease to expire")

    resume = [sys.executable, "-m", "orchestrator.cli", "resume", "shared", "--json"]
    env.pop("ORCHESTRATOR_LEASE_TTL_S")
    workers = [
        subprocess.Popen(resume, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        # The winner waits inside the slow call, holding the lease, until the loser has gone.
        wait_for(lambda: any(w.poll() is not None for w in workers), "one worker to give up")
        loser = next(w for w in workers if w.poll() is not None)
        winner = next(w for w in workers if w is not loser)
        out, err = loser.communicate(timeout=30)
        assert loser.returncode == 2, err
        assert f"run shared is being run by process {winner.pid}" in err
        assert winner.poll() is None
        gate.events[1].set()
        out, err = winner.communicate(timeout=60)
    finally:
        gate.events[1].set()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(30)
    assert winner.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "completed"
    assert {s["id"]: s["status"] for s in result["subproblems"]} == dict.fromkeys(
        ("fast1", "fast2", "slow", "last"), "done"
    )
    assert sum(r.is_plan for r in openai_env.requests) == 1  # planned once, by A
    for text in ("quick part one", "quick part two", "final part"):
        assert len(solve_calls(openai_env, text)) == 1, text  # finished once: never paid twice
    assert gate.arrivals == 2  # in flight when A died, so asked again (and only by the winner)
    (status,), *_ = query(url, "select status from runs where run_id = 'shared'")
    assert status == "completed"
    assert query(url, "select count(*) from leases") == [(0,)]
