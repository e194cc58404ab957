"""Batches through the SDK on in-process test models: order, concurrency, partial failure, the
results file, resuming without paying twice, and one budget for the whole batch."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Message, ModelError, RequestParams, UsageError, Workflow, parse_workflow
from orchestrator.batch import BatchTask, parse_tasks, read_results, run_id_for
from orchestrator.storage import open_storage
from orchestrator.testing import FunctionModel

SPEC = parse_workflow(
    """
name: batchy
models:
  w: {model: w-model, max_output_tokens: 64, price: {input: 1, output: 4}}
"""
)


class Script:
    """A model answering every task with a two-step plan; records calls per (task, step)."""

    def __init__(self, fail: set[tuple[str, str | None]] | None = None, hold: int = 0) -> None:
        self.calls: Counter[tuple[str, str | None]] = Counter()
        self.fail = fail or set()  # (task, step) pairs that fail until removed
        self.in_flight = self.peak = 0
        self.hold = hold  # plans wait until this many are in flight (to prove concurrency)
        self.gate = asyncio.Event()

    async def __call__(self, messages: list[Message], params: RequestParams) -> str:
        task = next(t for t in ("alpha", "beta", "gamma", "delta", "eps", "zeta")
                    if t in messages[-1].content)  # fmt: skip
        key = (task, params.step if params.purpose != "plan" else "plan")
        self.calls[key] += 1
        if key in self.fail:
            raise ModelError(f"{key} is down", profile="w", model="w-model")
        if params.purpose == "plan":
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.hold and self.peak >= self.hold:
                self.gate.set()
            if self.hold:
                await asyncio.wait_for(self.gate.wait(), timeout=10)
            self.in_flight -= 1
            steps = [
                {"id": "s1", "kind": "generate", "task": f"first {task}", "depends_on": []},
                {"id": "s2", "kind": "generate", "task": f"second {task}", "depends_on": ["s1"]},
            ]
            return json.dumps({"subproblems": steps})
        return f"{task} answer {params.step}"


TASKS = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]


def workflow(tmp_path: Path, script: Script) -> Workflow:
    return Workflow(SPEC, models={"w": FunctionModel(script)}, home=tmp_path / "home")


async def test_results_come_in_task_order_with_failures_apart(tmp_path: Path) -> None:
    script = Script(fail={("gamma", "s2")}, hold=3)
    results = await workflow(tmp_path, script).abatch([f"task {t}" for t in TASKS], concurrency=3)
    assert [r.task.id for r in results] == [f"task-{i}" for i in range(1, 7)]
    assert [r.status for r in results] == ["completed"] * 2 + ["failed"] + ["completed"] * 3
    assert script.peak == 3  # three runs at once, never more
    assert results[0].result is not None and results[0].result.output == "alpha answer None"
    assert len({r.run_id for r in results}) == 6


async def test_a_rerun_skips_settled_tasks_and_resumes_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    script = Script(fail={("beta", "s2")})
    wf = workflow(tmp_path, script)
    tasks = [BatchTask(t, f"task {t}") for t in TASKS[:3]]
    first = await wf.abatch(tasks, out=out)
    assert [r.status for r in first] == ["completed", "failed", "completed"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["alpha", "beta", "gamma"]
    assert {line["status"] for line in lines if line["id"] != "beta"} == {"completed"}
    assert all({"run_id", "usage", "subproblems", "output"} <= line.keys() for line in lines)

    script.fail.clear()
    before = script.calls.copy()
    second = await wf.abatch(tasks, out=out)
    assert [r.task.id for r in second] == ["beta"]  # the others were settled
    assert second[0].status == "completed" and second[0].run_id == first[1].run_id
    new = script.calls - before
    # Resumed from its checkpoint: no new plan and s1 not paid again; s2 and the answer are.
    assert new == Counter({("beta", "s2"): 1, ("beta", None): 1})
    assert read_results(out)["beta"]["status"] == "completed"


async def test_a_lost_result_line_is_recovered_without_a_call(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    script = Script()
    wf = workflow(tmp_path, script)
    await wf.abatch(["task alpha"], out=out)
    out.write_text(out.read_text()[:-20])  # a torn line, as a crash mid-write leaves it
    calls = sum(script.calls.values())
    again = await wf.abatch(["task alpha"], out=out)
    assert again[0].status == "completed" and sum(script.calls.values()) == calls
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["task-1"]


async def test_one_budget_bounds_the_whole_batch(tmp_path: Path) -> None:
    script = Script()
    wf = workflow(tmp_path, script)
    one = await wf.abatch(["task alpha"])
    per_task = one[0].cost_usd
    # A plan call's worst case (its prompt at a token per byte, the whole output cap) is
    # about 2.8 tasks' actual spending; six tasks' worth leaves room for a few tasks only.
    budget = per_task * 6
    results = await wf.abatch([f"task {t}" for t in TASKS], budget_usd=budget, concurrency=1)
    spent = sum(r.cost_usd for r in results)
    assert spent <= budget
    statuses = [r.status for r in results]
    assert statuses[:-1] == ["completed"] * (len(results) - 1)
    assert statuses[-1] == "budget_exceeded"
    assert len(results) < len(TASKS)  # once the batch budget refused a call, no task started
    refused = next(r for r in results if r.status == "budget_exceeded")
    assert refused.result is not None and refused.result.error is not None
    assert "the batch budget (--budget-usd)" in refused.result.error.message


def test_parse_tasks_names_each_bad_line() -> None:
    lines = [
        "plain text task",
        '"a JSON string task"',
        '{"id": 7, "input": "with an id"}',
        "",
        "{not json",
        '{"id": "x"}',
        '{"id": 7, "input": "same id"}',
        '{"id": [1], "input": "a list id"}',
        "[a plain task that starts with a bracket]",
    ]
    tasks, bad = parse_tasks(lines)
    assert tasks == [
        BatchTask("line-1", "plain text task"),
        BatchTask("line-2", "a JSON string task"),
        BatchTask("7", "with an id"),
        BatchTask("line-9", "[a plain task that starts with a bracket]"),
    ]
    assert [(b.line, b.reason.split(" (")[0].split(";")[0]) for b in bad] == [
        (5, "not JSON"),
        (6, 'no "input" text'),
        (7, "duplicate id '7'"),
        (8, '"id" must be a string or an integer'),
    ]


def test_batch_refuses_bad_settings(tmp_path: Path) -> None:
    wf = workflow(tmp_path, Script())
    with pytest.raises(UsageError, match="concurrency must be at least 1"):
        wf.batch(["task alpha"], concurrency=0)
    with pytest.raises(UsageError, match="ids must be unique"):
        wf.batch([{"id": "a", "input": "x"}, {"id": "a", "input": "y"}])


def test_blocking_batch_outside_a_loop(tmp_path: Path) -> None:
    results: list[Any] = workflow(tmp_path, Script()).batch(["task alpha", "task beta"])
    assert [r.status for r in results] == ["completed", "completed"]


async def test_a_task_stopped_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    """Killed during its plan call, a run has a run-log row but nothing to resume from."""
    out = tmp_path / "results.jsonl"
    task = BatchTask("alpha", "task alpha")
    async with open_storage(tmp_path / "home") as storage:
        await storage.runs.start_run(run_id_for(out, task, ""), "batchy", None, task.input)
    script = Script()
    (result,) = await workflow(tmp_path, script).abatch([task], out=out)
    assert result.status == "completed", result.error
    assert script.calls[("alpha", "plan")] == 1
