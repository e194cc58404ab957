"""Durable runs: checkpoints as each subproblem lands, resume after a failure or a SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import UsageError, Workflow, parse_workflow
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault

WORKFLOW = """
name: durable
models:
  thinker: {model: think-model, reasoning: true, retries: 0, price: {input: 2, output: 8}}
  writer: {model: write-model, retries: 0, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""

PLAN = {
    "subproblems": [
        {"id": "fast1", "kind": "generate", "task": "quick part one", "depends_on": []},
        {"id": "fast2", "kind": "generate", "task": "quick part two", "depends_on": ["fast1"]},
        {"id": "slow", "kind": "reason", "task": "slow deep part", "depends_on": []},
        {"id": "last", "kind": "generate", "task": "final part", "depends_on": ["fast2", "slow"]},
    ]
}


def solve_calls(server: FakeOpenAI, text: str) -> list[Any]:
    return [
        r
        for r in server.requests
        if "You solve one subproblem" in r.body["messages"][0]["content"]
        and text in r.body["messages"][-1]["content"].split("Your subproblem:")[-1]
    ]


def checkpointed(home: Path, run_id: str) -> set[str]:
    """The subproblem ids whose results a run's checkpoint holds (a solve task's return value,
    which begins with the result's id)."""
    path = home / "checkpoints.sqlite"
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        try:
            rows = db.execute(
                "select value from writes where thread_id = ? and channel = '__return__'",
                (run_id,),
            )
            heads = [bytes(value)[:24] for (value,) in rows]
        except sqlite3.OperationalError:  # not created yet
            return set()
    ids = ("fast1", "fast2", "slow", "last")
    return {sid for sid in ids if any(sid.encode() in head for head in heads)}


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    """Poll until `condition` holds; fail if the process ends first or 30 s pass."""
    deadline = time.monotonic() + 30
    while not condition():
        assert proc.poll() is None, "the run ended before the condition held"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)  # polling interval, not synchronisation: the condition decides


@pytest.fixture
def env(openai_env: FakeOpenAI, tmp_path: Path) -> Path:
    fake_openai = openai_env
    fake_openai.configure_model("think-model", reasoning=True)
    fake_openai.set_plan(PLAN)
    return tmp_path


async def test_failed_run_resumes_without_paying_twice(env: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=500), model="think-model")
    workflow = Workflow(parse_workflow(WORKFLOW))
    first = await workflow.arun("task", run_id="r1")
    assert first.status == "failed"
    assert {s.id: s.status for s in first.subproblems}["fast2"] == "done"
    before = len(fake_openai.requests)

    resumed = await workflow.aresume("r1")
    assert resumed.status == "completed" and resumed.output
    again = fake_openai.requests[before:]
    assert not any(r.is_plan for r in again)  # no re-planning
    for text in ("quick part one", "quick part two"):
        assert len(solve_calls(fake_openai, text)) == 1  # finished: never called again
    assert len(solve_calls(fake_openai, "slow deep part")) == 2  # failed, so retried
    # The run's cost covers both attempts, failed calls included.
    assert resumed.usage.by_profile["writer"].calls == 1 + 2 + 1 + 1  # plan, fast*2, last, synth
    assert resumed.usage.by_profile["thinker"].calls == 1  # the 500 was not billed

    done = await workflow.aresume("r1")  # a completed run: nothing left to do
    assert done.status == "completed" and done.output == resumed.output
    assert len(fake_openai.requests) == before + len(again)


async def test_run_ids_are_checked(env: Path, fake_openai: FakeOpenAI) -> None:
    workflow = Workflow(parse_workflow(WORKFLOW))
    await workflow.arun("task", run_id="same")
    with pytest.raises(UsageError, match="already exists"):
        await workflow.arun("task", run_id="same")
    with pytest.raises(UsageError, match="no run with id nope"):
        await workflow.aresume("nope")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(env: Path, fake_openai: FakeOpenAI) -> None:
    slow_arrivals: list[float] = []

    def latency(body: dict[str, Any]) -> float:
        if "slow deep part" not in str(body["messages"][-1]):
            return 0.0
        slow_arrivals.append(time.monotonic())
        return 3.0 if len(slow_arrivals) == 1 else 0.0  # in flight when the process dies

    fake_openai.configure_model("think-model", reasoning=True, latency=latency)
    path = env / "wf.yaml"
    path.write_text(WORKFLOW)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            str(path),
            "--input",
            "task",
            "--run-id",
            "killed",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ORCHESTRATOR_PLAIN": "1"},
    )
    # Kill once fast2's result is in the checkpoint (and the slow call still in flight).
    wait_for(lambda: "fast2" in checkpointed(env / "home", "killed"), proc)
    assert len(slow_arrivals) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    listed = json.loads(run_cli("runs", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [("killed", "interrupted")]

    before = len(fake_openai.requests)
    out = run_cli("resume", "killed", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "completed" and result["run_id"] == "killed"
    assert {s["id"]: s["status"] for s in result["subproblems"]} == dict.fromkeys(
        ("fast1", "fast2", "slow", "last"), "done"
    )
    resumed = fake_openai.requests[before:]
    assert not any(r.is_plan for r in resumed)
    assert len(solve_calls(fake_openai, "quick part one")) == 1
    assert len(solve_calls(fake_openai, "quick part two")) == 1
    assert len(slow_arrivals) == 2  # in flight when killed, so asked again
    assert len(solve_calls(fake_openai, "final part")) == 1

    listed = json.loads(run_cli("runs", "--json").stdout)
    assert listed[0]["status"] == "completed" and listed[0]["cost_usd"] > 0
    table = run_cli("runs")
    assert "killed" in table.stdout and "completed" in table.stdout

    missing = run_cli("resume", "nope")
    assert missing.returncode == 2 and "no run with id nope" in missing.stderr


@pytest.mark.slow
async def test_many_concurrent_runs_share_the_checkpoint_file(
    env: Path, fake_openai: FakeOpenAI
) -> None:
    import asyncio

    fake_openai.configure_model("write-model", latency=0.05)
    fake_openai.set_plan(
        {"subproblems": [{"id": "a", "kind": "generate", "task": "x", "depends_on": []}]}
    )
    workflow = Workflow(parse_workflow(WORKFLOW))
    results = await asyncio.gather(*(workflow.arun(f"task {i}") for i in range(120)))
    assert [r.status for r in results] == ["completed"] * 120  # no "database is locked"
    assert len({r.run_id for r in results}) == 120
