"""The learned router: features, training, calibration to a reasoning share on held-out items,
its file, and routing inside a run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from orchestrator import UsageError, Workflow
from orchestrator.policies.router import (
    features,
    load_router,
    save_router,
    threshold_for_share,
    train_router,
)
from orchestrator.specload import parse_workflow
from orchestrator.testing import TestModel

CHEAP = {"profile": "writer", "model": "write-model"}
STRONG = {"profile": "thinker", "model": "think-model"}


CLAUSES = (
    "then {a} more arrive", "each costs {a} dollars", "a tax of {a} percent applies",
    "{a} are returned", "the price rises by {a} percent", "it is split among {a} people",
    "a discount of {a} dollars is given", "they work {a} hours a day",
    "the speed is {a} km per hour", "{a} boxes hold {b} each", "the rest is shared equally",
    "interest is paid yearly", "half of them leave", "the total is doubled", "{a} days pass",
)  # fmt: skip


def items(n: int, seed: int) -> tuple[list[str], list[bool]]:
    """Word problems of 1-6 steps; the cheap model gets a k-step one right with probability
    1 - k/7, so difficulty shows in the wording but outcomes stay noisy, as real ones are."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        k = rng.randint(1, 6)
        parts = [
            rng.choice(CLAUSES).format(a=rng.randint(2, 99), b=rng.randint(2, 99)) for _ in range(k)
        ]
        texts.append(f"Sam has {rng.randint(2, 99)} apples; " + ", ".join(parts) + ". How many?")
        labels.append(rng.random() < 1 - k / 7)
    return texts, labels


def test_features_are_deterministic_and_normalised() -> None:
    a, b = features("Add 2 and 3."), features("Add 2 and 3.")
    assert a == b and abs(sum(v * v for v in a.values()) - 1) < 1e-9
    assert features("add 4 and 5.") != features("A train leaves at noon.")


def test_threshold_for_share_splits_scores() -> None:
    scores = [i / 100 for i in range(100)]
    t = threshold_for_share(scores, 0.3)
    assert sum(s < t for s in scores) == 30


@pytest.mark.parametrize("share", [0.2, 0.3, 0.5])
def test_calibration_holds_on_held_out_items(share: float) -> None:
    train_texts, train_labels = items(600, seed=1)
    test_texts, test_labels = items(1000, seed=2)
    trained = train_router(
        train_texts, train_labels, cheap=CHEAP, strong=STRONG, reason_share=share
    )
    cut = trained.threshold()
    sent = [trained.p_cheap_ok(t) < cut for t in test_texts]
    assert abs(sum(sent) / len(sent) - share) <= 0.05
    # It learned something: items it sends to reasoning are mostly the ones the cheap fails.
    failed = [not ok for ok in test_labels]
    precision = sum(s and f for s, f in zip(sent, failed, strict=True)) / max(sum(sent), 1)
    assert precision > 0.6 > sum(failed) / len(failed)  # better than routing at random


def test_router_file_round_trip_and_version(tmp_path: Path) -> None:
    texts, labels = items(60, seed=3)
    trained = train_router(texts, labels, cheap=CHEAP, strong=STRONG)
    path = tmp_path / "router.json"
    save_router(trained, path)
    again = load_router(path)
    assert again.p_cheap_ok(texts[0]) == pytest.approx(trained.p_cheap_ok(texts[0]), abs=1e-5)
    assert again.threshold(0.5) == pytest.approx(trained.threshold(0.5))
    assert path.stat().st_size < 200_000
    data = json.loads(path.read_text())
    data["orchestrator_router"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="not a router file of this version"):
        load_router(path)
    with pytest.raises(UsageError, match="at least 10 items"):
        train_router(texts[:5], labels[:5], cheap=CHEAP, strong=STRONG)


WORKFLOW = """
name: routed
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: %s}
policy: learned
policies:
  learned: {type: router, file: router.json}
graph:
  nodes:
    answer: {type: generate, prompt: q.md}
"""


def test_a_run_routes_by_the_router_and_refuses_other_profiles(tmp_path: Path) -> None:
    texts, labels = items(300, seed=4)
    save_router(
        train_router(texts, labels, cheap=CHEAP, strong=STRONG, reason_share=0.4),
        tmp_path / "router.json",
    )
    (tmp_path / "q.md").write_text("Answer.\n=== user ===\n{{ task }}\n")
    (tmp_path / "wf.yaml").write_text(WORKFLOW % "write-model")
    spec = parse_workflow((tmp_path / "wf.yaml").read_text(), file=str(tmp_path / "wf.yaml"))
    models = {"thinker": TestModel(default="deep"), "writer": TestModel(default="quick")}
    workflow = Workflow(spec, models=models, home=tmp_path / "home")
    easy = workflow.run("Sam has 40 apples; then 3 more arrive. How many?").subproblems[0]
    hard = workflow.run(
        "Sam has 40 apples; each costs 3 dollars, a tax of 8 percent applies, 12 are returned, "
        "the price rises by 5 percent, it is split among 4 people, 6 days pass. How many?"
    ).subproblems[0]
    assert (easy.output, easy.route.role, easy.route.policy) == ("quick", "generate", "learned")
    assert (hard.output, hard.route.role) == ("deep", "reason")
    assert hard.route.checks[0].check == "router" and hard.route.why.startswith("router: p(")

    (tmp_path / "wf.yaml").write_text(WORKFLOW % "another-model")
    other = parse_workflow((tmp_path / "wf.yaml").read_text(), file=str(tmp_path / "wf.yaml"))
    with pytest.raises(UsageError, match=r"trained for writer \(write-model\).*another-model"):
        Workflow(other, models=models, home=tmp_path / "home").run("What is 3 plus 4?")
