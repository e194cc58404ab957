"""Orchestrator overhead: a run of N independent subproblems vs. the same calls made by hand.

Against tests/fakeserver.py at zero latency. The baseline is plain asyncio + `openai.AsyncOpenAI`
replaying the very request bodies the orchestrator sent (recorded during the warm-up): 1 plan
call, N solve calls at once, 1 streamed synthesize call, with a fresh client per run as the
orchestrator makes. The orchestrator also opens its SQLite checkpointer in ORCHESTRATOR_HOME and
writes 5 checkpoints plus one pending write per finished subproblem (its @task result): that is
part of what is measured. The fake server runs in a child process so that its threads do not
compete with the client for the GIL. Usage: python benchmarks/overhead.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionChunk

import orchestrator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import fakeserver
from tests.fakeserver import FakeOpenAI

SIZES = (8, 32)
RUNS = 5
TASK = "Write a short guide to the history of the printing press, one section per part."
WORKFLOW = """
name: overhead-bench
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {concurrency: 64, max_subproblems: 64}
"""
Body = dict[str, Any]
Runner = Callable[[list[Body]], Coroutine[Any, Any, None]]
Stream = openai.AsyncStream[ChatCompletionChunk]


def plan_of(n: int) -> dict[str, Any]:
    return {
        "subproblems": [
            {"id": f"s{i}", "kind": "generate", "depends_on": [],
             "task": f"Write section {i} of the guide: one paragraph on period {i}."}
            for i in range(1, n + 1)
        ]
    }  # fmt: skip


async def run_orchestrator(_: list[Body]) -> None:
    result = await orchestrator.Workflow(orchestrator.parse_workflow(WORKFLOW)).arun(TASK)
    if result.status != "completed":
        raise SystemExit(f"orchestrator run did not complete: {result.status} {result.error}")


async def run_baseline(bodies: list[Body]) -> None:
    """The same requests by hand: plan, then every solve at once, then synthesize (streamed)."""
    plan_body, *solve_bodies, synth_body = bodies
    client = openai.AsyncOpenAI(base_url=os.environ["OPENAI_BASE_URL"], max_retries=0)
    async with client:
        plan = await client.chat.completions.create(**plan_body)
        subproblems = json.loads(plan.choices[0].message.content or "")["subproblems"]
        assert len(subproblems) == len(solve_bodies)
        await asyncio.gather(*(client.chat.completions.create(**b) for b in solve_bodies))
        stream = cast(Stream, await client.chat.completions.create(**synth_body))
        async for _ in stream:
            pass


def serve(conn: Connection, nagle: bool) -> None:
    """The fake server, in its own process so that it does not compete for our GIL."""
    # tests/fakeserver.py sends headers and body in two writes without TCP_NODELAY: on a reused
    # connection Nagle + delayed ACK hold each response ~40 ms. Real endpoints do not.
    fakeserver._Handler.disable_nagle_algorithm = not nagle
    with FakeOpenAI() as server:
        conn.send(server.base_url)
        # Each message: reply with the requests since the last one, then reset for `plan`.
        while (plan := conn.recv()) is not None:
            requests = [(r.is_plan, r.body) for r in server.requests]
            conn.send((requests, server.schema_errors))
            server.reset()  # zero latency everywhere
            server.configure_model("write-model")
            server.configure_model("think-model", reasoning=True)
            server.set_plan(plan)


def record_bodies(requests: list[tuple[bool, Body]]) -> list[Body]:
    """The orchestrator's requests, plan first and synthesize last."""
    plan = [body for is_plan, body in requests if is_plan]
    rest = [body for is_plan, body in requests if not is_plan]
    synth = [b for b in rest if "\n\nResults:\n" in b["messages"][-1]["content"]]
    solves = [b for b in rest if b not in synth]
    assert len(plan) == 1 and len(synth) == 1, (len(plan), len(synth))
    return [*plan, *solves, *synth]


def one_run(
    server: Connection, runner: Runner, plan: dict[str, Any], bodies: list[Body]
) -> tuple[float, list[tuple[bool, Body]]]:
    server.send(plan)
    server.recv()  # reset; drop earlier requests
    started = time.monotonic()
    asyncio.run(runner(bodies))
    wall = time.monotonic() - started
    server.send(plan)
    requests, errors = server.recv()
    assert not errors, errors
    assert len(requests) == len(plan["subproblems"]) + 2, len(requests)  # no call repeated
    return wall, requests


def measure(server: Connection, n: int) -> dict[str, Any]:
    plan = plan_of(n)
    _, requests = one_run(server, run_orchestrator, plan, [])  # warm-up, records the bodies
    bodies = record_bodies(requests)
    one_run(server, run_baseline, plan, bodies)  # warm-up
    orch, base = [], []
    for _ in range(RUNS):  # interleaved, so that load from elsewhere hits both alike
        orch.append(one_run(server, run_orchestrator, plan, [])[0])
        base.append(one_run(server, run_baseline, plan, bodies)[0])
    o, b = statistics.median(orch), statistics.median(base)
    calls = n + 2
    return {
        "subproblems": n,
        "calls": calls,
        "orchestrator_s": round(o, 4),
        "baseline_s": round(b, 4),
        "ratio": round(o / b, 2),
        "overhead_ms_per_call": round((o - b) * 1000 / calls, 2),
        "orchestrator_runs_s": [round(w, 4) for w in orch],
        "baseline_runs_s": [round(w, 4) for w in base],
    }


def overhead_fit(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Overhead (orchestrator - baseline) as a line through the smallest and the largest N: a
    fixed part per run plus a part per subproblem. Rough: each end is a median of a few runs."""
    (n1, o1), (n2, o2) = (
        (r["subproblems"], (r["orchestrator_s"] - r["baseline_s"]) * 1000)
        for r in (rows[0], rows[-1])
    )
    per_sub = (o2 - o1) / (n2 - n1)
    return {"ms_per_run": round(o1 - n1 * per_sub, 1), "ms_per_subproblem": round(per_sub, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--keep-nagle",
        action="store_true",
        help="leave Nagle on in the fake server (it then adds ~40 ms per reused connection)",
    )
    args = parser.parse_args()
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(theirs, args.keep_nagle), daemon=True
    )
    child.start()
    try:
        with tempfile.TemporaryDirectory() as home:
            os.environ.update(
                ORCHESTRATOR_HOME=home, OPENAI_BASE_URL=ours.recv(), OPENAI_API_KEY="sk-dummy"
            )
            rows = [measure(ours, n) for n in SIZES]
    finally:
        ours.send(None)
        child.join(timeout=10)
    fit = overhead_fit(rows)
    if args.json:
        print(json.dumps({"runs": RUNS, "latency_s": 0, "results": rows, "fit": fit}, indent=2))
        return
    print(f"zero-latency fake server; median of {RUNS} runs after 1 warm-up")
    print("orchestrator includes its SQLite checkpointer: opened per run, 5 checkpoints")
    print("plus 1 pending write per subproblem; the baseline writes nothing.")
    print(f"{'N':>4}{'calls':>7}{'orch ms':>10}{'base ms':>10}{'ratio':>8}{'ms/call':>9}")
    for r in rows:
        print(f"{r['subproblems']:>4}{r['calls']:>7}{r['orchestrator_s'] * 1000:>10.1f}"
              f"{r['baseline_s'] * 1000:>10.1f}{r['ratio']:>7.2f}x"
              f"{r['overhead_ms_per_call']:>9.2f}")  # fmt: skip
    print(f"overhead, rough fit through N={SIZES[0]} and N={SIZES[-1]}: {fit['ms_per_run']:.1f} ms"
          f" per run + {fit['ms_per_subproblem']:.2f} ms per subproblem")  # fmt: skip
    print("ratio orchestrator/baseline: " + ", ".join(
        f"N={r['subproblems']} {r['ratio']:.2f}x ({r['overhead_ms_per_call']:.2f} ms/call)"
        for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
