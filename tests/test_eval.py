"""`orchestrator eval` end to end against the scripted server, with scripted truth: who gets
which item right is known, so accuracy, escalations and cost can be checked exactly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from orchestrator.eval.dataset import load_dataset
from orchestrator.eval.replay import read_records, write_outputs
from orchestrator.eval.runner import EvalOptions, Evaluation
from orchestrator.models.base import TokenUsage
from orchestrator.models.pricing import cost_usd
from orchestrator.spec import Price
from orchestrator.specload import load_workflow
from tests.fakeserver import FakeOpenAI
from tests.scripted import Truth

WEAK, STRONG = "weak-model", "strong-model"
PRICES = {WEAK: (1.0, 1.0), STRONG: (20.0, 20.0)}  # a 20x price ratio
WORKFLOW = f"""
name: qa
models:
  thinker: {{model: {STRONG}, reasoning: true, price: {{input: 20, output: 20}}}}
  writer: {{model: {WEAK}, price: {{input: 1, output: 1}}}}
policies:
  checked: {{type: cascade, check: judge, judge: writer}}
graph:
  nodes:
    answer: {{type: generate, prompt: q.md}}
"""
N = 20
WEAK_RIGHT = set(range(12)) | {18}  # 13 of 20
STRONG_RIGHT = set(range(17))  # 17 of 20; item 18: weak right where strong is wrong


def setup(tmp_path: Path, server: FakeOpenAI, check_accuracy: float = 1.0) -> tuple[Path, Truth]:
    (tmp_path / "q.md").write_text("Answer with #### and the number.\n=== user ===\n{{ task }}\n")
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    rows, targets, inputs, right = [], {}, {}, {}
    for i in range(N):
        item = f"q{i:02d}"
        text = f"Item {item}: what is {i} + {i + 7}?"
        targets[item], inputs[item] = str(2 * i + 7), text
        right[(item, WEAK)], right[(item, STRONG)] = i in WEAK_RIGHT, i in STRONG_RIGHT
        rows.append(json.dumps({"id": item, "input": text, "target": targets[item]}))
    (tmp_path / "data.jsonl").write_text("\n".join(rows) + "\n")
    truth = Truth(targets, right, inputs, check_accuracy=check_accuracy)
    server.configure_model(STRONG, reasoning=True)
    server.responder = truth.responder()
    return tmp_path, truth


def evaluate(base: Path, policies: tuple[str, ...], **options: object) -> Evaluation:
    spec = load_workflow(base / "wf.yaml")
    items = load_dataset(base / "data.jsonl", default_scorer="numeric")
    options.setdefault("scorer", "numeric")
    evaluation = Evaluation(spec, items, EvalOptions(policies, base / "out", **options))  # type: ignore[arg-type]
    asyncio.run(evaluation.run())
    return evaluation


def server_cost(server: FakeOpenAI) -> float:
    """What the server billed, at each model's prices."""
    total = 0.0
    for model, u in server.billed:
        p_in, p_out = PRICES[model]
        usage = TokenUsage(u["prompt_tokens"], 0, u["completion_tokens"])
        total += cost_usd(usage, Price(input=p_in, output=p_out))
    return total


def test_accuracy_escalations_and_cost_follow_the_scripted_truth(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    base, _ = setup(tmp_path, openai_env)
    evaluation = evaluate(base, ("checked",))
    summary = write_outputs(
        base / "out", evaluation.records, workflow="qa", dataset="data", order=("checked",)
    )
    policies = summary["policies"]
    assert policies["all-generate"]["accuracy"] == pytest.approx(len(WEAK_RIGHT) / N)
    assert policies["all-reason"]["accuracy"] == pytest.approx(len(STRONG_RIGHT) / N)
    # A perfect judge passes exactly the items the weak model gets right and escalates the
    # rest, where the strong model's answer counts.
    escalated = {
        r.item_id for r in evaluation.records
        if r.policy == "checked" and r.route["steps"][0]["escalations"]
    }  # fmt: skip
    assert escalated == {f"q{i:02d}" for i in range(N) if i not in WEAK_RIGHT}
    expected = len(WEAK_RIGHT) + len(STRONG_RIGHT - WEAK_RIGHT)
    assert policies["checked"]["accuracy"] == pytest.approx(expected / N)
    assert policies["all-reason"]["reason_share"] == 1.0
    assert policies["checked"]["pgr"] == pytest.approx(
        (expected - len(WEAK_RIGHT)) / (len(STRONG_RIGHT) - len(WEAK_RIGHT))
    )
    # What the evaluation says it paid is what the server billed; the cache answered the
    # cascade's cheap calls (all-generate made the same requests), so the list cost is more.
    extra = summary["extra"]["policies"]
    assert sum(p["spent_usd"] for p in extra.values()) == pytest.approx(server_cost(openai_env))
    assert extra["checked"]["spent_usd"] < policies["checked"]["cost_usd"]


def test_replay_reproduces_the_live_metrics_exactly(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    base, _ = setup(tmp_path, openai_env)
    evaluation = evaluate(base, ("checked",))
    out = base / "out"
    live = write_outputs(out, evaluation.records, workflow="qa", dataset="d", order=("checked",))
    before = len(openai_env.requests)
    replayed = write_outputs(out, read_records(out), workflow="qa", dataset="d", order=("checked",))
    assert replayed == live and len(openai_env.requests) == before


def test_an_interrupted_evaluation_resumes_without_rerunning(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    base, _ = setup(tmp_path, openai_env)
    first = evaluate(base, ("checked",))
    samples = (base / "out" / "samples.jsonl").read_text().splitlines()
    (base / "out" / "samples.jsonl").write_text("\n".join(samples[:-7]) + "\n")  # cut off
    before = len(openai_env.requests)
    again = evaluate(base, ("checked",))
    assert len(again.records) == len(first.records)
    # The 7 lost records were run again, all from their checkpoints or the cache: no request.
    assert len(openai_env.requests) == before
