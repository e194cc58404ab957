"""Compute allocation on 1,000 scripted items: each policy's PGR, cost relative to all-reason
and reasoning share, at judge accuracies of 75 %, 90 % and 97 %.

Items and outcomes follow the published GSM8K figures for a weak/strong pair (RouteLLM's):
the weak model is right on 63.7 % of items, the strong on 85.8 %, and the weak is right where
the strong is wrong on 7.2 %. Each item's joint outcome is drawn with those probabilities
(then the exact counts are kept); its wording carries a noisy difficulty signal (how many
steps it has), as real problems do, which a learned router can pick up. The strong model
costs 20 times the weak per token.

Everything runs for real: the scripted OpenAI-compatible server answers (tests/scripted.py),
each item is a run of a one-node workflow under each policy through `orchestrator eval`'s
runner (the response cache on, so shared calls are paid once; every policy is charged its
calls at full price). The judge of a `cascade` is the weak model itself; its verdict is right
with the stated accuracy. A wrong weak model's samples disagree (a different wrong number per
seed), so `agree` detects most wrong answers. The router is trained on a separate 1,000 items'
outcomes and calibrated to send 30 % to reasoning.

Usage: python benchmarks/allocation.py [--items N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from orchestrator.eval.dataset import Item
from orchestrator.eval.metrics import summarize
from orchestrator.eval.runner import EvalOptions, Evaluation
from orchestrator.policies.router import save_router, train_router
from orchestrator.specload import load_workflow
from tests.fakeserver import FakeOpenAI
from tests.scripted import Truth

WEAK, STRONG = "weak-model", "strong-model"
# (weak right, strong right) -> probability, from the published marginals
JOINT = {(True, True): 0.565, (True, False): 0.072, (False, True): 0.293, (False, False): 0.070}
STEPS = {(True, True): (1, 4), (True, False): (1, 3), (False, True): (3, 6), (False, False): (4, 6)}
CHECK_ACCURACIES = (0.75, 0.90, 0.97)
POLICIES = ("cascade-judge", "cascade-agree", "self-consistency", "router")
WORKED = 500  # characters of worked solution in every answer: about 125 tokens, as GSM8K's
PROMPT = (
    "You solve grade-school math word problems. Work through the problem step by step, then "
    "end with a line `#### n` giving the final number.\n=== user ===\n{{ task }}\n"
)
WORKFLOW = f"""
name: allocation
models:
  thinker: {{model: {STRONG}, reasoning: true, price: {{input: 20, output: 20}}}}
  writer: {{model: {WEAK}, price: {{input: 1, output: 1}}}}
policies:
  cascade-judge: {{type: cascade, check: judge, judge: writer}}
  cascade-agree: {{type: cascade, check: agree, samples: 2, threshold: 1.0, extract: last_number}}
  self-consistency: {{type: self_consistency, samples: 5, extract: last_number}}
  router: {{type: router, file: router.json, reason_share: 0.3}}
graph:
  nodes:
    answer: {{type: generate, prompt: q.md}}
"""
CLAUSES = (
    "then {a} more are bought", "each pack holds {a}", "a {a} percent discount applies",
    "{a} are given away", "the price rises by {a} dollars", "it is shared among {a} friends",
    "she works {a} hours a day", "the trip takes {a} hours", "{a} boxes hold {b} each",
    "the rest is split evenly", "half of what is left is sold",
)  # fmt: skip


def make_items(n: int, seed: int) -> tuple[list[Item], Truth]:
    """`n` items whose joint outcomes have exactly the published shares (rounded)."""
    rng = random.Random(seed)
    kinds = [k for k, p in JOINT.items() for _ in range(round(p * n))][:n]
    kinds += [(True, True)] * (n - len(kinds))
    rng.shuffle(kinds)
    items, targets, inputs, right = [], {}, {}, {}
    for i, kind in enumerate(kinds):
        item = f"g{seed}-{i:04d}"
        steps = rng.randint(*STEPS[kind])
        parts = [
            rng.choice(CLAUSES).format(a=rng.randint(2, 60), b=rng.randint(2, 9))
            for _ in range(steps)
        ]
        text = (
            f"Problem {item}: Maya collects marbles for a school fair and keeps a careful tally. "
            f"She starts with {rng.randint(10, 90)} marbles; " + ", ".join(parts) + ". "
            "How many marbles does she have at the end?"
        )
        target = str(rng.randint(10, 999))
        items.append(Item(item, text, target))
        targets[item], inputs[item] = target, text
        right[(item, WEAK)], right[(item, STRONG)] = kind
    return items, Truth(targets, right, inputs, worked=WORKED)


def train(base: Path, seed: int, n: int) -> None:
    """The router, trained on another `n` items' outcomes: the cheap model suffices where it is
    right or the strong one is wrong too."""
    items, truth = make_items(n, seed)
    suffices = [truth.right[(i.id, WEAK)] or not truth.right[(i.id, STRONG)] for i in items]
    cheap, strong = {"profile": "writer", "model": WEAK}, {"profile": "thinker", "model": STRONG}
    trained = train_router([i.input for i in items], suffices, cheap=cheap, strong=strong)
    save_router(trained, base / "router.json")


async def evaluate(out: Path, items: list[Item], policies: tuple[str, ...]) -> list[Any]:
    spec = load_workflow(out.parent / "wf.yaml")
    options = EvalOptions(policies, out, concurrency=32, scorer="numeric")
    evaluation = Evaluation(spec, items, options)
    await evaluation.run()
    return evaluation.records


def run(n: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        base = Path(tmp)
        (base / "q.md").write_text(PROMPT)
        (base / "wf.yaml").write_text(WORKFLOW)
        train(base, seed=1, n=1000)
        items, truth = make_items(n, seed=2)
        server.configure_model(STRONG, reasoning=True, reasoning_tokens=0)
        server.responder = truth.responder()
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench-0000000000")
        for number, accuracy in enumerate(CHECK_ACCURACIES):
            truth.check_accuracy = accuracy
            # The other policies do not depend on the judge: measured once, with the first.
            policies = POLICIES if number == 0 else ("cascade-judge",)
            started = time.monotonic()
            records = asyncio.run(evaluate(base / f"out-{number}", items, policies))
            metrics = summarize(records, order=POLICIES)
            table = {
                name: {
                    "accuracy": m.accuracy,
                    "quality_vs_all_reason": m.accuracy / metrics["all-reason"].accuracy,
                    "pgr": m.pgr,
                    "cost_vs_all_reason": m.cost_vs_all_reason,
                    "reason_share": m.reason_share,
                }
                for name, m in metrics.items()
            }
            table["_seconds"] = round(time.monotonic() - started, 1)
            results[f"{accuracy:.0%}"] = table
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.items)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{args.items} scripted items; weak right 63.7 %, strong 85.8 %, weak-only 7.2 %; 20x price"
    )
    for accuracy, table in results.items():
        seconds = table.pop("_seconds")
        print(f"\njudge accuracy {accuracy} ({seconds} s)")
        head = ("policy", "accuracy", "vs reason", "PGR", "cost vs reason", "reason share")
        print(f"{head[0]:18} {head[1]:>9} {head[2]:>10} {head[3]:>6} {head[4]:>15} {head[5]:>13}")
        for name, m in table.items():
            pgr = "—" if m["pgr"] is None else f"{m['pgr']:.2f}"
            share = "—" if m["reason_share"] is None else f"{m['reason_share']:.0%}"
            print(
                f"{name:18} {m['accuracy']:9.1%} {m['quality_vs_all_reason']:10.1%} {pgr:>6} "
                f"{m['cost_vs_all_reason']:15.1%} {share:>13}"
            )


if __name__ == "__main__":
    main()
