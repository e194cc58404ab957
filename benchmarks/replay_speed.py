"""Replay speed: `orchestrator eval --replay DIR --router r.json` on 10,000 items × 5 policies
× 10 thresholds. The goal: under 60 s.

The evaluation directory is synthetic and no model is called: SampleRecords are written
directly, as the runner would have written them. Each item is a word problem of 1 to 8 steps;
the cheap model is right less often the more steps there are (~62 % overall), the reasoning
model mostly right (~86 %), and the strong model costs ~20 times as much and takes longer.
Besides the two baselines there are three policies: a cascade (cheap, escalated when a noisy
check fails), self-consistency (five cheap samples) and a router by step count.

Timed: training a router on the 10,000 items (`replay.train_from`, as `--train-router` does),
then what the replay does, in this process piece by piece (reading samples.jsonl, summarize
with its bootstrap intervals, write_outputs, the sweep), and then the real command in a
subprocess, end to end (interpreter start-up and imports included).

Usage: python benchmarks/replay_speed.py [--items N] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from orchestrator.eval.metrics import GENERATE, REASON, SampleRecord, summarize
from orchestrator.eval.replay import read_inputs, read_records, sweep, train_from, write_outputs
from orchestrator.policies.router import load_router, save_router

T = TypeVar("T")
REPLAY_PIECES = (
    "read samples.jsonl",
    "read items.jsonl",
    "write_outputs (summary, report, svg)",
    "sweep (10 thresholds)",
)
GOAL_S = 60.0
POLICIES = ("cascade", "self_consistency", "router")
CHEAP = {"profile": "writer", "model": "weak-model"}
STRONG = {"profile": "thinker", "model": "strong-model"}
NOUNS = ("crates", "tickets", "apples", "books", "coins", "tiles", "seeds", "cards")
VERBS = ("adds", "removes", "doubles", "sells", "gives away", "buys", "splits off", "returns")


def problem(rng: random.Random, index: int) -> tuple[str, int]:
    """A word problem and how many steps it has (the difficulty a router can learn)."""
    steps = rng.randint(1, 8)
    noun = rng.choice(NOUNS)
    parts = [f"Problem {index}: a store has {rng.randint(10, 999)} {noun}."]
    for _ in range(steps):
        parts.append(f"Then it {rng.choice(VERBS)} {rng.randint(2, 99)} {noun}.")
    parts.append(f"How many {noun} does it have now?")
    return " ".join(parts), steps


def record(item: str, policy: str, right: bool, cost: float, latency: float, **more: Any) -> str:
    calls, reason_calls = more.pop("calls", 1), more.pop("reason_calls", 0)
    profile = STRONG["profile"] if reason_calls else CHEAP["profile"]
    return SampleRecord(
        item_id=item,
        policy=policy,
        repeat=0,
        answer=f"Working through it step by step.\n#### {1000 if right else 999}",
        score=1.0 if right else 0.0,
        passed=right,
        cost_usd=cost * 0.7,  # some calls were cache hits: paid less than the list price
        list_cost_usd=cost,
        latency_s=latency,
        reason_calls=reason_calls,
        calls=calls,
        tokens_by_profile={profile: int(cost * 1e7)},
        route={"steps": [{"policy": policy, "role": "reason" if reason_calls else "generate"}]},
        **more,
    ).to_json()


def item_records(rng: random.Random, item: str, steps: int) -> Iterator[str]:
    """The item's record under each of the five policies, outcomes correlated as in life."""
    cheap_ok = rng.random() < 0.95 - 0.08 * steps
    strong_ok = rng.random() < (0.97 if cheap_ok else 0.72)
    cheap_cost, strong_cost = rng.uniform(1e-4, 3e-4), rng.uniform(2e-3, 6e-3)
    cheap_s, strong_s = rng.uniform(0.5, 3.0), rng.uniform(4.0, 25.0)
    yield record(item, GENERATE, cheap_ok, cheap_cost, cheap_s)
    yield record(item, REASON, strong_ok, strong_cost, strong_s, reason_calls=1)
    escalate = cheap_ok == (rng.random() < 0.15)  # the check is right 85 % of the time
    yield record(
        item, "cascade", strong_ok if escalate else cheap_ok,
        cheap_cost * 2 + (strong_cost if escalate else 0), cheap_s + (strong_s if escalate else 0),
        calls=3 if escalate else 2, reason_calls=int(escalate),
    )  # fmt: skip
    voted = cheap_ok or rng.random() < 0.1
    yield record(item, "self_consistency", voted, cheap_cost * 5, cheap_s * 1.3, calls=5)
    hard = steps >= 6
    yield record(
        item, "router", strong_ok if hard else cheap_ok, strong_cost if hard else cheap_cost,
        strong_s if hard else cheap_s, reason_calls=int(hard),
    )  # fmt: skip


def build(out: Path, items: int, seed: int = 0) -> None:
    """samples.jsonl, items.jsonl and eval.json for `items` synthetic items."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "samples.jsonl").open("w") as samples, (out / "items.jsonl").open("w") as inputs:
        for i in range(items):
            item = f"item-{i:05d}"
            text, steps = problem(rng, i)
            inputs.write(json.dumps({"id": item, "input": text}) + "\n")
            samples.writelines(line + "\n" for line in item_records(rng, item, steps))
    meta = {
        "workflow": "synthetic.yaml",
        "name": "synthetic",
        "dataset": f"synthetic-{items}.jsonl",
        "policies": list(POLICIES),
        "cheap": CHEAP,
        "strong": STRONG,
    }
    (out / "eval.json").write_text(json.dumps(meta, indent=2) + "\n")


def timed(figures: dict[str, float], name: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    figures[name] = time.perf_counter() - started
    print(f"  {name:<40} {figures[name]:8.2f} s", flush=True)
    return result


def in_process(out: Path, router: Path, figures: dict[str, float]) -> None:
    """The replay's pieces, as `evaluate._replay` and `_print_sweep` run them."""
    meta = json.loads((out / "eval.json").read_text())
    records = timed(figures, "read samples.jsonl", lambda: read_records(out))
    inputs = timed(figures, "read items.jsonl", lambda: read_inputs(out))
    trained = timed(
        figures,
        "train router (train_from)",
        lambda: train_from(
            records, inputs, cheap=meta["cheap"], strong=meta["strong"], reason_share=0.3
        ),
    )
    save_router(trained, router)
    order = meta["policies"]
    timed(figures, "summarize (incl. bootstrap)", lambda: summarize(records, order=order))
    timed(
        figures,
        "write_outputs (summary, report, svg)",
        lambda: write_outputs(
            out, records, workflow=meta["name"], dataset=meta["dataset"], order=order
        ),
    )
    loaded = load_router(router)
    points = timed(figures, "sweep (10 thresholds)", lambda: sweep(records, inputs, loaded))
    # what `--replay DIR --router r.json` does; summarize is inside write_outputs
    figures["replay in process"] = sum(figures[k] for k in REPLAY_PIECES)
    print(f"  {'= replay in process (no training)':<40} {figures['replay in process']:8.2f} s")
    print(f"  sweep: {len(points)} thresholds, shares {[p.share for p in points]}")


def cli(out: Path, router: Path, figures: dict[str, float]) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "eval", "--replay", str(out)]
    command += ["--router", str(router)]
    env = {**os.environ, "ORCHESTRATOR_PLAIN": "1", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    done = timed(
        figures,
        "CLI: eval --replay DIR --router r.json",
        lambda: subprocess.run(command, capture_output=True, text=True, env=env, check=False),
    )
    if done.returncode != 0:
        raise SystemExit(f"the replay failed ({done.returncode}):\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--keep", metavar="DIR", help="build the evaluation here and keep it")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.keep or scratch) / "eval"
        router = out.parent / "router.json"
        print(f"{args.items:,} items × {2 + len(POLICIES)} policies in {out}")
        timed(figures, "build the evaluation (no calls)", lambda: build(out, args.items))
        in_process(out, router, figures)
        cli(out, router, figures)
    total = figures["CLI: eval --replay DIR --router r.json"]
    verdict = "meets" if total < GOAL_S else "MISSES"
    print(f"replay end to end: {total:.1f} s, {verdict} the goal of {GOAL_S:.0f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}, indent=2))


if __name__ == "__main__":
    main()
