"""The SDK end to end against the scripted server: events, routing, scheduling, plans, failures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    AnswerToken,
    CallFinished,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
    UsageError,
    Workflow,
    parse_workflow,
)
from tests.fakeserver import FakeOpenAI, Fault, Reply

WORKFLOW = """
name: t
models:
  thinker:
    model: think-model
    reasoning: true
    price: {input: 2.0, output: 8.0}
    retries: 0
  writer:
    model: write-model
    price: {input: 0.1, output: 0.4}
    retries: 0
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {concurrency: %(concurrency)d, on_plan_failure: %(on_plan_failure)s}
"""


def plan(*items: tuple[str, str, str, list[str]]) -> dict[str, Any]:
    return {
        "subproblems": [{"id": i, "kind": k, "task": t, "depends_on": d} for i, k, t, d in items]
    }


@pytest.fixture
def workflow(openai_env: FakeOpenAI, tmp_path: Path) -> Workflow:
    fake_openai = openai_env
    fake_openai.configure_model("think-model", reasoning=True, trace_style="reasoning_content")
    return make(tmp_path)


def make(tmp_path: Path, concurrency: int = 8, on_plan_failure: str = "fallback") -> Workflow:
    text = WORKFLOW % {"concurrency": concurrency, "on_plan_failure": on_plan_failure}
    return Workflow(parse_workflow(text), home=tmp_path)


def is_solve(body: dict[str, Any]) -> bool:
    return "You solve one subproblem" in body["messages"][0]["content"]


def latency_from_task(body: dict[str, Any]) -> float:
    """Subproblem tasks carry their latency, e.g. "[0.6s] slow analysis"."""
    if not is_solve(body):
        return 0.0
    last = body["messages"][-1]["content"]
    match = re.search(r"\[(\d+(?:\.\d+)?)s\]", last.split("Your subproblem:")[-1])
    return float(match.group(1)) if match else 0.0


async def test_events_routing_and_result(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    fake_openai.set_plan(
        plan(
            ("s1", "reason", "analyse the trade-offs", []),
            ("s2", "generate", "list three options", []),
            ("s3", "generate", "write it up", ["s1", "s2"]),
        )
    )
    events = [e async for e in workflow.astream("Choose a database")]
    kinds = [type(e) for e in events]
    assert kinds[0] is CallFinished and PlanReady in kinds and kinds[-1] is RunFinished
    assert kinds.index(PlanReady) < kinds.index(SubproblemStarted) < kinds.index(AnswerToken)
    assert sum(k is SubproblemFinished for k in kinds) == 3
    result = events[-1].result
    assert result.status == "completed" and result.error is None
    answer = "".join(e.text for e in events if isinstance(e, AnswerToken))
    assert answer == result.output and result.output.startswith("[write-model] answer")
    by_id = {s.id: s for s in result.subproblems}
    assert (by_id["s1"].profile, by_id["s1"].model) == ("thinker", "think-model")
    assert (by_id["s2"].profile, by_id["s3"].profile) == ("writer", "writer")
    assert by_id["s1"].trace and "TRACE(think-model)" in by_id["s1"].trace
    # s3 sees its dependencies' answers, never s1's reasoning trace.
    s3 = next(r for r in fake_openai.requests if "write it up" in str(r.body["messages"][-1]))
    prompt = "\n".join(m["content"] for m in s3.body["messages"])
    assert by_id["s1"].output in prompt and by_id["s2"].output in prompt
    assert "TRACE" not in prompt
    synth = fake_openai.requests[-1]
    assert "TRACE" not in str(synth.body) and synth.body.get("stream") is True
    usage = result.usage
    assert usage.by_profile["thinker"].calls == 1 and usage.by_profile["writer"].calls == 4
    assert usage.by_profile["thinker"].reasoning_tokens == 50
    assert usage.cost_usd == pytest.approx(sum(p.cost_usd for p in usage.by_profile.values()))
    assert set(result.to_dict()) == {"run_id", "status", "output", "subproblems", "usage", "error"}


async def test_subproblem_starts_when_its_own_dependencies_finish(
    workflow: Workflow, fake_openai: FakeOpenAI
) -> None:
    for model in ("think-model", "write-model"):
        fake_openai.configure_model(
            model, latency=latency_from_task, reasoning=model == "think-model"
        )
    fake_openai.set_plan(
        plan(
            ("slow", "reason", "[1.0s] slow analysis", []),
            ("a", "generate", "[0.2s] step a", []),
            ("b", "generate", "[0.2s] step b", ["a"]),
        )
    )
    result = await workflow.arun("task")
    assert result.status == "completed"
    reqs = {
        tag: r
        for r in fake_openai.requests
        for tag in ("slow", "step a", "step b")
        if is_solve(r.body) and tag in r.body["messages"][-1]["content"]
    }
    assert reqs["step b"].started >= reqs["step a"].ended
    assert reqs["step b"].ended < reqs["slow"].ended  # not held back by the slow branch
    assert len(fake_openai.requests) == 5  # plan + 3 + synthesize: nothing paid twice


async def test_concurrency_limit(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai = openai_env
    fake_openai.configure_model("write-model", latency=latency_from_task)
    fake_openai.set_plan(plan(*[(f"s{i}", "generate", "[0.2s] part", []) for i in range(5)]))
    result = await make(tmp_path, concurrency=2).arun("task")
    assert result.status == "completed" and fake_openai.peak_in_flight == 2


async def test_plan_repaired_and_noted(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    fake_openai.set_plan(
        plan(("s1", "generate", "one", ["s1", "nope"]), ("s2", "generate", "two", ["s1"]))
    )
    result = await workflow.arun("task")
    assert result.status == "completed"
    assert result.plan_note and "itself" in result.plan_note and "'nope'" in result.plan_note
    assert [s.depends_on for s in result.subproblems] == [(), ("s1",)]


async def test_cyclic_plan_replanned_with_the_cycle_named(
    workflow: Workflow, fake_openai: FakeOpenAI
) -> None:
    cyclic = plan(("a", "generate", "x", ["b"]), ("b", "generate", "y", ["a"]))
    fake_openai.enqueue(Reply(content=__import__("json").dumps(cyclic)))
    fake_openai.set_plan(plan(("s1", "generate", "fine", [])))
    result = await workflow.arun("task")
    assert result.status == "completed" and [s.id for s in result.subproblems] == ["s1"]
    replan = fake_openai.requests[1]
    assert replan.is_plan and "cycle" in replan.body["messages"][-1]["content"]
    assert result.plan_note is None


async def test_invalid_plans_fall_back_or_fail(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai = openai_env
    fake_openai.set_plan(plan(("a", "generate", "x", []), ("a", "generate", "y", [])))
    result = await make(tmp_path).arun("the whole task")
    assert result.status == "completed"
    assert [(s.id, s.kind) for s in result.subproblems] == [("s1", "reason")]
    assert result.plan_note and "replaced" in result.plan_note and "duplicate" in result.plan_note
    assert sum(r.is_plan for r in fake_openai.requests) == 3  # the plan and two re-plans

    failed = await make(tmp_path, on_plan_failure="fail").arun("the whole task")
    assert failed.status == "failed" and failed.error and failed.error.type == "PlanError"
    assert failed.usage.by_profile["writer"].calls == 3  # the failed plans were billed


async def test_failed_subproblem_fails_the_run_and_keeps_the_rest(
    workflow: Workflow, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_plan(
        plan(
            ("ok", "generate", "fine", []),
            ("bad", "reason", "breaks", []),
            ("after", "generate", "needs bad", ["bad"]),
        )
    )
    fake_openai.enqueue(Fault(status=500), model="think-model")
    result = await workflow.arun("task")
    assert result.status == "failed" and result.error and result.error.type == "ModelError"
    status = {s.id: s.status for s in result.subproblems}
    assert status == {"ok": "done", "bad": "failed", "after": "pending"}
    assert not any("needs bad" in str(r.body) for r in fake_openai.requests)
    assert result.usage.by_profile["writer"].calls == 2  # plan + ok


def test_sync_run_and_misuse(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    result = workflow.run("task")
    assert result.status == "completed" and result.output
    with pytest.raises(UsageError, match="empty"):
        workflow.run("  ")


async def test_sync_run_inside_event_loop_is_refused(workflow: Workflow) -> None:
    with pytest.raises(UsageError, match="arun"):
        workflow.run("task")


async def test_fallback_profile_after_retries(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai = openai_env
    spec = parse_workflow(
        "name: t\nmodels:\n"
        "  main: {model: flaky, retries: 1, fallback: backup, price: {input: 1, output: 1}}\n"
        "  backup: {model: steady}\n"
        "roles: {plan: backup, reason: main, generate: main, synthesize: backup}\n"
    )
    fake_openai.set_plan(plan(("s1", "generate", "one", [])))
    for _ in range(2):
        fake_openai.enqueue(Fault(status=503, headers={"Retry-After": "0"}), model="flaky")
    result = await Workflow(spec, home=tmp_path).arun("task")
    assert result.status == "completed"
    assert result.subproblems[0].output.startswith("[steady] answer")
    models = [r.model for r in fake_openai.requests]
    assert models == ["steady", "flaky", "flaky", "steady", "steady"]


async def test_billed_calls_of_a_failed_plan_are_counted(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai = openai_env
    fake_openai.configure_model("think-model", reasoning=True)
    spec = parse_workflow(
        "name: t\nmodels:\n"
        "  thinker: {model: think-model, reasoning: true, max_output_tokens: 100,\n"
        "            max_output_tokens_ceiling: 100, price: {input: 1, output: 10}}\n"
        "  writer: {model: write-model}\n"
        "roles: {plan: thinker, reason: thinker, generate: writer, synthesize: writer}\n"
    )
    fake_openai.enqueue(Reply(content="", finish_reason="length", completion_tokens=100))
    result = await Workflow(spec, home=tmp_path).arun("task")
    assert result.status == "failed" and result.error and result.error.type == "TruncatedError"
    thinker = result.usage.by_profile["thinker"]
    assert (thinker.calls, thinker.output_tokens) == (1, 100)
    assert result.usage.cost_usd == pytest.approx(thinker.cost_usd) and thinker.cost_usd > 0.001


def test_plan_schema_bounds_strings_only_for_grammar_backed_models() -> None:
    import json

    from orchestrator.graph.state import plan_json_schema

    loose, bounded = plan_json_schema(4), plan_json_schema(4, grammar=True)
    assert "maxLength" not in json.dumps(loose)
    item = bounded["properties"]["subproblems"]["items"]["properties"]
    assert item["task"]["maxLength"] == 240 and item["depends_on"]["maxItems"] == 4


async def test_an_unused_profile_needs_no_key(
    openai_env: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # only the writer has a key
    spec = parse_workflow(
        "name: t\nmodels:\n  writer: {model: write-model, api_key: sk-test-writer-000000}\n"
        "  spare: {model: other}\n"
        "roles: {plan: writer, reason: writer, generate: writer, synthesize: writer}\n"
    )
    assert spec.used_profiles() == {"writer"}
    result = await Workflow(spec, home=tmp_path).arun("task")
    assert result.status == "completed"
    assert {r.model for r in openai_env.requests} == {"write-model"}


async def test_fallbacks_chain(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    spec = parse_workflow(
        "name: t\nmodels:\n"
        "  a: {model: model-a, retries: 0, fallback: b}\n"
        "  b: {model: model-b, retries: 0, fallback: c}\n"
        "  c: {model: model-c}\n"
        "roles: {plan: c, reason: a, generate: a, synthesize: c}\n"
    )
    openai_env.set_plan(plan(("s1", "generate", "one", [])))
    openai_env.enqueue(Fault(status=500), model="model-a")
    openai_env.enqueue(Fault(status=500), model="model-b")
    result = await Workflow(spec, home=tmp_path).arun("task")
    assert result.status == "completed"
    assert result.subproblems[0].output.startswith("[model-c] answer")
    assert [r.model for r in openai_env.requests][1:4] == ["model-a", "model-b", "model-c"]
