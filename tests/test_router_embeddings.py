"""A router that reads embeddings from a `/v1/embeddings` profile: training and calibration on
vectors, the file, and inside a run a billed, retried, budgeted embedding call per step."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from orchestrator import UsageError, Workflow
from orchestrator.policies.router import load_router, save_router, train_router
from orchestrator.specload import parse_workflow
from orchestrator.storage import open_storage
from orchestrator.testing import TestModel
from tests.conftest import TEST_KEY
from tests.fakeembed import vector
from tests.fakeserver import FakeOpenAI, Fault
from tests.test_router import CHEAP, STRONG, items

EMBED = ("embed", "embed-model")
HARD = (
    "Sam has 40 apples; each costs 3 dollars, a tax of 8 percent applies, 12 are returned, "
    "the price rises by 5 percent, it is split among 4 people, 6 days pass. How many?"
)


def trained_on_vectors(n: int, seed: int, share: float = 0.4):  # type: ignore[no-untyped-def]
    texts, labels = items(n, seed)
    return train_router(
        texts,
        labels,
        cheap=CHEAP,
        strong=STRONG,
        reason_share=share,
        embedding=EMBED,
        vectors=[vector(t) for t in texts],
    )


@pytest.mark.parametrize("share", [0.2, 0.4])
def test_an_embeddings_router_calibrates_on_held_out_items(share: float) -> None:
    trained = trained_on_vectors(600, seed=1, share=share)
    test_texts, test_labels = items(1000, seed=2)
    cut = trained.threshold()
    sent = [trained.p_cheap_ok(t, vector(t)) < cut for t in test_texts]
    # Measured over 10 training sets x 2 shares (600 items, 1,000 held out): mean deviation
    # +0.4 points, sd 2.7, worst 7.0 -- unbiased, and 3 sd is the bound.
    assert abs(sum(sent) / len(sent) - share) <= 0.08
    failed = [not ok for ok in test_labels]
    precision = sum(s and f for s, f in zip(sent, failed, strict=True)) / max(sum(sent), 1)
    assert precision > 0.6 > sum(failed) / len(failed)  # it learned from the vectors


def test_the_file_names_the_profile_and_refuses_other_vectors(tmp_path: Path) -> None:
    trained = trained_on_vectors(60, seed=3)
    save_router(trained, tmp_path / "r.json")
    again = load_router(tmp_path / "r.json")
    assert again.embedding is not None
    assert (again.embedding.profile, again.embedding.model, again.embedding.dim) == (
        "embed",
        "embed-model",
        64,
    )
    text = items(1, seed=9)[0][0]
    assert again.p_cheap_ok(text, vector(text)) == pytest.approx(
        trained.p_cheap_ok(text, vector(text)), abs=1e-4
    )
    with pytest.raises(UsageError, match="64-dimensional embeddings from embed"):
        again.p_cheap_ok(text, [0.1] * 8)
    with pytest.raises(UsageError, match="one vector per training text"):
        train_router(["a"] * 20, [True, False] * 10, cheap=CHEAP, strong=STRONG, embedding=EMBED)


WORKFLOW = """
name: routed
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
%s
policy: learned
policies:
  learned: {type: router, file: router.json}
limits: {budget_usd: %s}
graph:
  nodes:
    answer: {type: generate, prompt: q.md}
"""


def _workflow(tmp: Path, server: FakeOpenAI, *, profile: bool = True, budget: float = 1.0):
    embed = (
        f"  embed: {{model: embed-model, base_url: '{server.base_url}', api_key: {TEST_KEY}, "
        "retries: 2, price: {input: 0.02}}"
    )
    (tmp / "q.md").write_text("Answer.\n=== user ===\n{{ task }}\n")
    (tmp / "wf.yaml").write_text(WORKFLOW % (embed if profile else "", budget))
    spec = parse_workflow((tmp / "wf.yaml").read_text(), file=str(tmp / "wf.yaml"))
    models = {"thinker": TestModel(default="deep"), "writer": TestModel(default="quick")}
    return Workflow(spec, models=models, home=tmp / "home")


def test_a_run_embeds_each_step_once_billed_to_the_run(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    trained = trained_on_vectors(300, seed=4)
    save_router(trained, tmp_path / "router.json")
    cut = trained.threshold()
    # One text the router sends each way, judged from the vectors the server will return.
    pool = items(50, seed=5)[0]
    cheap = next(t for t in pool if trained.p_cheap_ok(t, vector(t)) >= cut)
    strong = next(t for t in pool if trained.p_cheap_ok(t, vector(t)) < cut)
    workflow = _workflow(tmp_path, fake_openai)
    easy, hard = workflow.run(cheap), workflow.run(strong)
    assert (easy.subproblems[0].output, easy.subproblems[0].route.role) == ("quick", "generate")
    assert (hard.subproblems[0].output, hard.subproblems[0].route.role) == ("deep", "reason")
    score = hard.subproblems[0].route.checks[0].score
    assert score == pytest.approx(trained.p_cheap_ok(strong, vector(strong)), abs=1e-4)
    sent = [(model, body["input"]) for model, body in fake_openai.embedding_requests]
    assert sent == [("embed-model", [cheap]), ("embed-model", [strong])]
    for result in (easy, hard):
        (route_call,) = [c for c in result.calls if c.purpose == "route"]
        assert (route_call.profile, route_call.step) == ("embed", "answer")
        assert route_call.usage.input_tokens > 5  # the server's count: one per word
        assert route_call.cost_usd == pytest.approx(route_call.usage.input_tokens * 0.02 / 1e6)
        assert result.usage.by_profile["embed"].cost_usd == route_call.cost_usd
        assert result.usage.cost_usd == pytest.approx(sum(c.cost_usd for c in result.calls))


def result_attempts(tmp: Path, run_id: str) -> list[Any]:
    """The failed attempts the run log holds for `run_id`."""

    async def read() -> list[Any]:
        async with open_storage(tmp / "home") as storage:
            return await storage.runs.attempts(run_id)

    return asyncio.run(read())


def test_a_failed_embedding_is_retried_and_a_missing_profile_refused(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    save_router(trained_on_vectors(300, seed=4), tmp_path / "router.json")
    fake_openai.enqueue(Fault(status=503, headers={"Retry-After": "0"}), "embeddings")
    result = _workflow(tmp_path, fake_openai).run(HARD)
    assert result.status == "completed" and len(fake_openai.embedding_requests) == 2
    assert len([c for c in result.calls if c.purpose == "route"]) == 1  # the 503 is not billed
    (failed,) = [a for a in result_attempts(tmp_path, result.run_id)]
    assert (failed.purpose, failed.status, failed.profile, failed.number) == (
        "route",
        503,
        "embed",
        1,
    )

    with pytest.raises(UsageError, match="reads embeddings from profile 'embed' \\(embed-model\\)"):
        _workflow(tmp_path, fake_openai, profile=False).run(HARD)
    assert len(fake_openai.embedding_requests) == 2  # refused before any call


def test_an_embedding_that_cannot_fit_the_budget_is_not_sent(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    save_router(trained_on_vectors(300, seed=4), tmp_path / "router.json")
    result = _workflow(tmp_path, fake_openai, budget=1e-9).run(HARD)
    assert result.status == "budget_exceeded"
    assert result.error is not None and "embedding 1 text(s) with embed" in result.error.message
    assert fake_openai.embedding_requests == []
