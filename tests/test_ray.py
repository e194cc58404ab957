"""`orchestrator batch --ray` on a local Ray instance: the same results and cost as a batch in
one process, and a worker killed mid-task whose task another worker finishes with nothing
that had finished paid for again."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Reply
from tests.test_batch_cli import env, lines, scripted, step_of, task_of
from tests.test_cli import script, write_workflow

pytestmark = pytest.mark.slow
TASKS = [f"Plan offsite number {n}." for n in range(1, 5)]
RAY = {"RAY_DISABLE_USAGE_STATS": "1"}


def batch(fake: FakeOpenAI, tmp: Path, name: str, *extra: str, **more_env: str) -> tuple[Any, Path]:
    tasks = tmp / "tasks.txt"
    tasks.write_text("\n".join(TASKS) + "\n")
    out = tmp / f"{name}.jsonl"
    done = run_cli(
        "batch", str(write_workflow(tmp)), "--input", str(tasks), "--out", str(out), *extra,
        timeout=280, **env(fake, tmp / f"home-{name}"), **RAY, **more_env,
    )  # fmt: skip
    return done, out


def ray_task_pids() -> list[int]:
    """Ray workers running `run_task` (Ray retitles a worker `ray::run_task` while it does)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # not a process, or it ended
            continue
        if entry.name.isdigit() and cmdline.startswith(b"ray::run_task"):
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return scripted(fake_openai)


def comparable(path: Path) -> dict[str, tuple[str, str, float]]:
    return {
        r["id"]: (r["status"], r["output"], round(r["usage"]["cost_usd"], 10)) for r in lines(path)
    }


def test_a_ray_batch_matches_the_same_batch_in_one_process(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    here, here_out = batch(fake, tmp_path, "local", "--concurrency", "2")
    assert here.returncode == 0, here.stderr
    billed = len(fake.requests)
    there, there_out = batch(fake, tmp_path, "ray", "--concurrency", "2", "--ray")
    assert there.returncode == 0, there.stderr
    assert "Traceback" not in there.stderr
    assert comparable(there_out) == comparable(here_out)
    assert {s for s, _, _ in comparable(there_out).values()} == {"completed"}
    assert len(fake.requests) == 2 * billed  # the same calls, no more


def test_a_killed_worker_has_its_task_finished_elsewhere_without_paying_twice(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    victim = TASKS[1]
    killed: list[int] = []

    def kill_the_worker(body: dict[str, Any]) -> Reply:
        # The first subproblem request of the victim task: kill the worker that sent it.
        if not killed and task_of(body) == victim and "response_format" not in body:
            # One task at a time: the one worker running `run_task` is the victim's. Ray may
            # retitle the worker a moment after the task began, so look for a few seconds.
            deadline = time.monotonic() + 5
            while len(workers := ray_task_pids()) != 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            if len(workers) == 1:
                killed.append(workers[0])
                os.kill(workers[0], signal.SIGKILL)
        return script(body)

    fake.responder = kill_the_worker
    done, out = batch(fake, tmp_path, "ray", "--concurrency", "1", "--ray")
    assert killed, "no worker was killed"
    assert done.returncode == 0, done.stderr
    results = {r["id"]: r for r in lines(out)}
    assert {r["status"] for r in results.values()} == {"completed"} and len(results) == 4
    per_task = Counter(task_of(r.body) for r in fake.requests)
    plans = Counter(task_of(r.body) for r in fake.requests if r.is_plan)
    assert plans == Counter(dict.fromkeys(TASKS, 1))  # resumed: the plan was never paid again
    assert all(per_task[t] == 5 for t in TASKS if t != victim)
    # The victim's steps: s1 and s2 run side by side, so one or both were in flight when its
    # worker died; each is asked again at most once, and s3 and the answer once.
    steps = Counter(step_of(r.body) for r in fake.requests if task_of(r.body) == victim)
    assert steps["TASK_GAMMA"] == 1 and steps[None] == 2  # s3; the plan and the answer
    assert 1 <= steps["TASK_ALPHA"] <= 2 and 1 <= steps["TASK_BETA"] <= 2
    assert steps["TASK_ALPHA"] + steps["TASK_BETA"] >= 3  # the killed call was made again


def test_a_ray_batch_on_postgresql_storage(fake: FakeOpenAI, tmp_path: Path, pg_url: str) -> None:
    """Workers share one PostgreSQL database, as on a cluster: the runs are found there."""
    done, out = batch(
        fake, tmp_path, "ray-pg", "--concurrency", "2", "--ray",
        ORCHESTRATOR_DATABASE_URL=pg_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = lines(out)
    assert {r["status"] for r in results} == {"completed"} and len(results) == len(TASKS)
    listed = run_cli("runs", "--json", "--limit", "50", ORCHESTRATOR_DATABASE_URL=pg_url)
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"] for r in results} <= {r["run_id"] for r in json.loads(listed.stdout)}
