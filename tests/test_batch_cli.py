"""`orchestrator batch` as a user runs it: the real CLI in a subprocess against the scripted
server — results lines, bad lines, a rerun that makes no request, and a batch killed with
SIGKILL whose rerun finishes it without paying for a finished task again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Recorded
from tests.test_cli import ANSWERS, PLAN, SECRET, THINKER, WRITER, script, write_workflow

TASKS = [f"Plan offsite number {n}." for n in range(1, 5)]


def scripted(server: FakeOpenAI) -> FakeOpenAI:
    """The scripted server as tests/test_cli.py scripts it: its plan, its replies."""
    server.configure_model(THINKER, reasoning=True, cached_tokens=400)
    server.configure_model(WRITER, cached_tokens=100)
    server.set_plan(PLAN)
    server.responder = script
    return server


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return scripted(fake_openai)


def env(fake: FakeOpenAI, home: Path) -> dict[str, str]:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": SECRET,
            "ORCHESTRATOR_HOME": str(home)}  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def task_of(body: dict[str, Any]) -> str | None:
    text = json.dumps(body.get("messages"))  # none in a request torn by a SIGKILL
    return next((t for t in TASKS if t in text), None)


def step_of(body: dict[str, Any]) -> str | None:
    """Which subproblem a request solves (its TASK_ keyword), None for the plan and answer."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    text = str(users[-1]["content"]) if users else ""
    keys = [k for k in ANSWERS if k in text]
    return keys[0] if len(keys) == 1 and "response_format" not in body else None


def call_of(request: Recorded) -> str:
    """plan, a subproblem's TASK_ keyword, or answer."""
    return "plan" if request.is_plan else step_of(request.body) or "answer"


def test_a_batch_writes_a_line_per_task_and_a_rerun_makes_no_request(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    wf = write_workflow(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    rows = [json.dumps({"id": f"t{i}", "input": t}) for i, t in enumerate(TASKS[:3])]
    tasks.write_text("\n".join([rows[0], TASKS[3], "{broken", rows[1], rows[2]]) + "\n")
    out = tmp_path / "results.jsonl"
    args = ("batch", str(wf), "--input", str(tasks), "--out", str(out), "--concurrency", "2")
    done = run_cli(*args, **env(fake, tmp_path / "home"))
    assert done.returncode == 1, done.stderr  # a bad line was skipped: not all completed
    assert f"{tasks}:3: not JSON" in done.stderr and "(skipped)" in done.stderr
    assert "4 tasks: 4 completed, 0 not completed" in done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + out.read_text()
    results = lines(out)
    assert sorted(r["id"] for r in results) == ["line-2", "t0", "t1", "t2"]
    assert {r["status"] for r in results} == {"completed"}
    assert all(r["output"].startswith("FINAL ANSWER") for r in results)
    billed = len(fake.requests)
    assert billed == 4 * 5  # plan, three subproblems and the answer, per task

    again = run_cli(*args, **env(fake, tmp_path / "home"))
    assert "4 already done" in again.stderr and len(fake.requests) == billed
    assert len(lines(out)) == 4


def test_strict_refuses_a_bad_line_before_any_request(fake: FakeOpenAI, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(f'{TASKS[0]}\n{{"id": "x"}}\n')
    out = tmp_path / "results.jsonl"
    done = run_cli(
        "batch", str(write_workflow(tmp_path)), "--input", str(tasks), "--out", str(out),
        "--strict", **env(fake, tmp_path / "home"),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f'error: {tasks}:2: no "input" text; fix it, or drop --strict to skip bad lines\n'
    )
    assert fake.requests == [] and not out.exists()


@pytest.mark.slow
def test_a_killed_batch_resumes_without_paying_for_finished_work_again(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.configure_model(WRITER, cached_tokens=100, latency=0.3)
    wf = write_workflow(tmp_path)
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("\n".join(TASKS) + "\n")
    out = tmp_path / "results.jsonl"
    args = ["batch", str(wf), "--input", str(tasks), "--out", str(out), "--concurrency", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env={**os.environ, "ORCHESTRATOR_PLAIN": "1", **env(fake, tmp_path / "home")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "no task finished"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # A request the kill cut off mid-send reaches the server empty: that is the kill, not
    # something orchestrator sent; anything else the schema check found still fails the test.
    torn = "request body is not a JSON object: b''"
    assert set(fake.schema_errors) <= {torn}, fake.schema_errors
    fake.clear_schema_errors()
    finished = {r["id"] for r in lines(out)}
    assert 1 <= len(finished) < len(TASKS)
    before = Counter(task_of(r.body) for r in fake.requests)

    done = run_cli(*args, timeout=240, **env(fake, tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} already done" in done.stderr
    results = {r["id"]: r for r in lines(out)}
    assert len(results) == len(TASKS) and {r["status"] for r in results.values()} == {"completed"}
    after = Counter(task_of(r.body) for r in fake.requests) - before
    done_tasks = {TASKS[int(i.split("-")[1]) - 1] for i in finished}
    assert not any(after[t] for t in done_tasks)  # a finished task is never paid again
    # Each unfinished task resumes from its checkpoint: at most its 5 calls again, and only a
    # call that was in flight at the kill is made twice. s1 and s2 run side by side, so up to
    # two of a task's calls can have been in flight: each step asked at most twice, and at
    # most two extra calls per task.
    assert all(after[t] <= 5 for t in TASKS)
    for t in (t for t in TASKS if t not in done_tasks):
        asked = Counter(call_of(r) for r in fake.requests if task_of(r.body) == t)
        assert max(asked.values()) <= 2 and 5 <= sum(asked.values()) <= 5 + 2, asked
