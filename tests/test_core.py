"""Planning, scheduling, the ledger and the resume protocol on in-process test models.

No HTTP here: `orchestrator.testing` models stand in for the endpoints, so these tests are
about orchestrator's own logic (the wire is tested against the scripted server elsewhere).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    Abort,
    Answer,
    Approve,
    CallFinished,
    Edit,
    Message,
    ModelError,
    PlanReady,
    RequestParams,
    RunFinished,
    StepResult,
    SubproblemStarted,
    UsageError,
    Workflow,
    parse_workflow,
)
from orchestrator.testing import FunctionModel, TestModel, smallest_valid

SPEC = parse_workflow(
    """
name: core
models:
  thinker: {model: think-model, reasoning: true, price: {input: 2, output: 8}}
  writer: {model: write-model, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
)


def plan(*items: tuple[str, str, list[str]]) -> list[dict[str, Any]]:
    return [{"id": i, "kind": k, "task": f"task {i}", "depends_on": d} for i, k, d in items]


def subproblem(messages: list[Message]) -> str:
    return messages[-1].content.split("Your subproblem:")[-1]


async def test_plan_solve_synthesize_with_routes_steps_and_costs(tmp_path: Path) -> None:
    writer = TestModel(plan=plan(("s1", "reason", []), ("s2", "generate", ["s1"])))
    thinker = TestModel(default="deep answer")
    workflow = Workflow(SPEC, models={"writer": writer, "thinker": thinker}, home=tmp_path)
    events = [e async for e in workflow.astream("a task")]
    result = events[-1].result
    assert isinstance(events[-1], RunFinished) and result.status == "completed"
    [ready] = [e for e in events if isinstance(e, PlanReady)]
    assert [(s.id, s.status, s.profile) for s in ready.subproblems] == [
        ("s1", "pending", "thinker"),
        ("s2", "pending", "writer"),
    ]
    started = [e for e in events if isinstance(e, SubproblemStarted)]
    assert [(e.step.id, e.route.why) for e in started] == [
        ("s1", "kind: reason"),
        ("s2", "kind: generate"),
    ]
    calls = [e.call for e in events if isinstance(e, CallFinished)]
    assert [(c.purpose, c.step) for c in calls] == [
        ("plan", None),
        ("solve", "s1"),
        ("solve", "s2"),
        ("synthesize", None),
    ]
    s1, _ = result.subproblems
    assert isinstance(s1, StepResult) and s1.output == "deep answer" and s1.status == "done"
    assert s1.cost_usd == pytest.approx(calls[1].cost_usd) and s1.usage == calls[1].usage
    assert "Result of s1:\ndeep answer" in writer.requests[1][0][-1].content  # s2 sees s1
    assert result.usage.by_profile["thinker"].calls == 1
    assert result.usage.cost_usd == pytest.approx(sum(c.cost_usd for c in calls))
    assert result.to_dict()["subproblems"][0] == {
        "id": "s1", "kind": "reason", "profile": "thinker", "model": "think-model",
        "status": "done", "output": "deep answer",
        "route": {
            "policy": "label", "role": "reason", "profile": "thinker", "model": "think-model",
            "why": "kind: reason", "samples": 1, "checks": [], "escalations": 0,
        },
    }  # fmt: skip


async def test_a_step_starts_when_its_own_dependencies_finish(tmp_path: Path) -> None:
    """`b` depends only on `a`; it must run while the unrelated slow step is still thinking."""
    b_started = asyncio.Event()

    async def think(messages: list[Message], params: RequestParams) -> str:
        await asyncio.wait_for(b_started.wait(), timeout=10)  # fails the test if b waits
        return "slow answer"

    def write(messages: list[Message], params: RequestParams) -> str:
        if params.step == "b":
            b_started.set()
        if params.purpose == "plan":
            return json.dumps(
                {
                    "subproblems": plan(
                        ("slow", "reason", []), ("a", "generate", []), ("b", "generate", ["a"])
                    )
                }
            )
        return f"answer {params.step}"

    models = {"thinker": FunctionModel(think), "writer": FunctionModel(write)}
    result = await Workflow(SPEC, models=models, home=tmp_path).arun("task")
    assert result.status == "completed"
    assert [s.status for s in result.subproblems] == ["done", "done", "done"]


async def test_concurrency_limit_bounds_calls_in_flight(tmp_path: Path) -> None:
    spec = parse_workflow("name: c\nmodels: {w: {model: w}}\nlimits: {concurrency: 2}\n")
    in_flight, peak = 0, 0
    gate = asyncio.Event()

    async def answer(messages: list[Message], params: RequestParams) -> str:
        nonlocal in_flight, peak
        if params.purpose == "plan":
            return json.dumps({"subproblems": plan(*[(f"s{i}", "generate", []) for i in range(5)])})
        in_flight += 1
        peak = max(peak, in_flight)
        if peak == 2:
            gate.set()
        await asyncio.wait_for(gate.wait(), timeout=10)
        in_flight -= 1
        return "ok"

    result = await Workflow(spec, models={"w": FunctionModel(answer)}, home=tmp_path).arun("t")
    assert result.status == "completed" and peak == 2


async def test_concurrent_runs_each_solve_their_own_plan_through_one_cached_task(
    tmp_path: Path,
) -> None:
    """Every step runs as one module-level LangGraph task that finds its run's plan in the
    context it was called from: concurrent runs must each get their own steps, and LangGraph
    builds the task's runnable once (around a closure it built one per step)."""
    from langgraph.pregel._call import CACHE

    from orchestrator.graph.execute import _solve_step

    def answer(messages: list[Message], params: Any) -> str:
        return f"answer to {subproblem(messages).strip()}"

    async def run(i: int) -> Any:
        steps = plan(*((f"r{i}s{j}", "generate", []) for j in range(3)))

        def writer(messages: list[Message], params: Any) -> str:
            if params.purpose == "plan":
                return json.dumps({"subproblems": steps})
            return answer(messages, params)

        models = {"writer": FunctionModel(writer), "thinker": FunctionModel(answer)}
        return await Workflow(SPEC, models=models, home=tmp_path).arun("t", run_id=f"r{i}")

    results = await asyncio.gather(*(run(i) for i in range(6)))
    for i, result in enumerate(results):
        assert result.status == "completed"
        assert {s.id: s.output for s in result.subproblems} == {
            f"r{i}s{j}": f"answer to task r{i}s{j}" for j in range(3)
        }
    assert (_solve_step, True) in CACHE


async def test_a_failed_step_fails_the_run_keeps_its_cost_and_resumes(tmp_path: Path) -> None:
    writer = TestModel(plan=plan(("s1", "generate", []), ("s2", "reason", [])))
    thinker = TestModel([ModelError("thinker is down", profile="thinker", model="think-model")])
    workflow = Workflow(SPEC, models={"writer": writer, "thinker": thinker}, home=tmp_path)
    first = await workflow.arun("task", run_id="r1")
    assert first.status == "failed" and first.error and "thinker is down" in first.error.message
    assert {s.id: s.status for s in first.subproblems} == {"s1": "done", "s2": "failed"}
    solved_before = len(writer.requests)
    resumed = await workflow.aresume("r1")
    assert resumed.status == "completed"
    assert len(thinker.requests) == 2  # s2 again
    assert len(writer.requests) == solved_before + 1  # only the synthesis: s1 was checkpointed
    assert resumed.usage.by_profile["writer"].calls == 3  # plan, s1, synthesize: all attempts


async def test_plan_review_approve_edit_abort(tmp_path: Path) -> None:
    models = {"writer": TestModel(plan=plan(("s1", "generate", []))), "thinker": TestModel()}
    workflow = Workflow(SPEC, models=models, home=tmp_path)

    paused = await workflow.arun("task", run_id="a", approve_plan=True)
    assert paused.status == "awaiting_approval" and paused.subproblems[0].status == "pending"
    with pytest.raises(UsageError, match="waiting for plan approval"):
        await workflow.aresume("a")
    with pytest.raises(UsageError, match="Approve"):
        await workflow.aresume("a", Answer("yes"))
    assert (await workflow.aresume("a", Approve())).status == "completed"
    with pytest.raises(UsageError, match="not waiting"):
        await workflow.aresume("a", Approve())

    await workflow.arun("task", run_id="e", approve_plan=True)
    with pytest.raises(UsageError, match="cycle"):
        await workflow.aresume("e", Edit(plan(("x", "generate", ["y"]), ("y", "generate", ["x"]))))
    edited = await workflow.aresume("e", Edit(plan(("x", "reason", []))))
    assert [(s.id, s.profile, s.status) for s in edited.subproblems] == [("x", "thinker", "done")]
    assert edited.plan_note == "plan edited at review"

    await workflow.arun("task", run_id="x", approve_plan=True)
    aborted = await workflow.aresume("x", Abort())
    assert aborted.status == "failed" and aborted.error and aborted.error.type == "PlanRejected"


async def test_human_node_takes_an_answer(tmp_path: Path) -> None:
    spec = parse_workflow(
        """
name: ask
models: {w: {model: w}}
graph:
  nodes:
    ask: {type: human, message: "Which colour?"}
    write: {type: python, function: echo}
  edges: [{from: ask, to: write}]
"""
    )
    echo = {"echo": lambda state: f"chose {state['ask']}"}
    workflow = Workflow(spec, functions=echo, home=tmp_path)
    paused = await workflow.arun("task", run_id="h")
    assert paused.status == "awaiting_input" and paused.question == "Which colour?"
    with pytest.raises(UsageError, match="Answer"):
        await workflow.aresume("h", Approve())
    done = await workflow.aresume("h", Answer("blue"))
    assert done.status == "completed" and done.output == "chose blue"
    assert [(s.id, s.status) for s in done.subproblems] == [("ask", "done"), ("write", "done")]


def test_smallest_valid_satisfies_the_plan_schema() -> None:
    from orchestrator.graph.state import Plan, plan_json_schema

    Plan.model_validate(smallest_valid(plan_json_schema(4)))


async def test_run_ids_are_plain(tmp_path: Path) -> None:
    workflow = Workflow(SPEC, models={"writer": TestModel(), "thinker": TestModel()}, home=tmp_path)
    for bad in ("", "-x", "a b", "a/b", "[/x]", "x" * 129):
        with pytest.raises(UsageError, match="run id"):
            await workflow.arun("task", run_id=bad)
    assert (await workflow.arun("task", run_id="Run_1.a-b")).run_id == "Run_1.a-b"


async def test_estimated_usage_is_marked_in_the_result_and_json(tmp_path: Path) -> None:
    from orchestrator import ModelResponse, TokenUsage

    guess = ModelResponse("hi", usage=TokenUsage(10, 0, 5, estimated=True))
    writer = TestModel([json.dumps({"subproblems": plan(("s1", "generate", []))}), guess, "done"])
    workflow = Workflow(SPEC, models={"writer": writer, "thinker": TestModel()}, home=tmp_path)
    result = await workflow.arun("task")
    writer_usage = result.usage.by_profile["writer"]
    assert writer_usage.estimated and result.to_dict()["usage"]["by_profile"]["writer"]["estimated"]
    assert result.subproblems[0].usage.estimated
    assert "estimated" not in result.to_dict()["usage"]["by_profile"].get("thinker", {})
