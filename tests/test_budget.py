"""`limits.budget_usd`: worst cases checked before each call; degrade or stop when it runs out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import Workflow, parse_workflow
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI

WORKFLOW = """
name: budget
models:
  thinker:
    model: think-model
    reasoning: true
    max_output_tokens: 10000
    max_output_tokens_ceiling: 10000
    price: {input: 1.0, output: 10.0}
  writer: {model: write-model, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {budget_usd: %(budget)s, on_budget: %(policy)s, concurrency: 8}
"""

CHAIN = {
    "subproblems": [
        {"id": "r1", "kind": "reason", "task": "first", "depends_on": []},
        {"id": "r2", "kind": "reason", "task": "second", "depends_on": ["r1"]},
        {"id": "r3", "kind": "reason", "task": "third", "depends_on": ["r2"]},
        {"id": "g1", "kind": "generate", "task": "prose", "depends_on": []},
    ]
}


@pytest.fixture
def server(openai_env: FakeOpenAI) -> FakeOpenAI:
    fake_openai = openai_env
    # Each thinker call bills 5,000 reasoning tokens: $0.05 at $10 per 1M.
    fake_openai.configure_model("think-model", reasoning=True, reasoning_tokens=5000)
    fake_openai.set_plan(CHAIN)
    return fake_openai


def workflow(budget: float, policy: str) -> Workflow:
    return Workflow(parse_workflow(WORKFLOW % {"budget": budget, "policy": policy}))


async def test_stop_keeps_finished_work_and_never_overspends(server: FakeOpenAI) -> None:
    # A thinker call's worst case is ~$0.10 (10,000 output tokens); after r1 and r2 ($0.05
    # each) the third no longer fits in $0.20.
    result = await workflow(0.20, "stop").arun("task")
    assert result.status == "budget_exceeded"
    assert result.error and result.error.type == "BudgetExceededError"
    assert "budget" in result.error.message
    status = {s.id: s.status for s in result.subproblems}
    assert status["r1"] == status["r2"] == status["g1"] == "done" and status["r3"] != "done"
    assert result.usage.cost_usd <= 0.20
    assert sum(r.model == "think-model" for r in server.requests) == 2


async def test_degrade_moves_remaining_reasoning_to_the_generative_role(server: FakeOpenAI) -> None:
    result = await workflow(0.20, "degrade").arun("task")
    assert result.status == "completed"
    by_id = {s.id: s for s in result.subproblems}
    assert by_id["r1"].profile == by_id["r2"].profile == "thinker"
    assert (by_id["r3"].kind, by_id["r3"].profile) == ("reason", "writer")
    assert result.usage.cost_usd <= 0.20
    assert result.usage.by_profile["thinker"].calls == 2


async def test_parallel_calls_reserve_their_worst_case(server: FakeOpenAI) -> None:
    server.set_plan(
        {
            "subproblems": [
                {"id": f"r{i}", "kind": "reason", "task": f"part {i}", "depends_on": []}
                for i in range(6)
            ]
        }
    )
    server.configure_model("think-model", reasoning=True, reasoning_tokens=5000, latency=0.2)
    result = await workflow(0.35, "stop").arun("task")
    # Six parallel worst cases of ~$0.10 cannot all be in flight under $0.35.
    assert result.status == "budget_exceeded"
    assert result.usage.cost_usd <= 0.35
    assert 1 <= sum(r.model == "think-model" for r in server.requests) <= 3


async def test_generative_calls_get_a_cap_when_a_budget_is_set(server: FakeOpenAI) -> None:
    await workflow(5.0, "stop").arun("task")
    writer = [r.body for r in server.requests if r.model == "write-model"]
    assert writer and all(b["max_completion_tokens"] == 4096 for b in writer)


def test_cli_exit_1_on_budget_exceeded(server: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW % {"budget": 0.2, "policy": "stop"})
    out = run_cli("run", str(path), "--input", "t", "--json")
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "budget_exceeded" and result["usage"]["cost_usd"] <= 0.2
