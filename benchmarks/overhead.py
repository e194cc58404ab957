"""Orchestrator overhead: a run of N independent subproblems vs. the same calls made by hand.

Against tests/fakeserver.py at zero latency. The baseline is plain asyncio + `openai.AsyncOpenAI`
replaying the very request bodies the orchestrator sent (recorded during the warm-up): 1 plan
call, N solve calls at once, 1 streamed synthesize call. It is set up exactly as orchestrator's
`ClientPool` sets up its clients, so that only orchestrator's own machinery is measured:

- each client built by the very function the pool builds its clients with
  (`orchestrator.models.pool.build_client`: one SSL context per process, the pool's connection
  limits, `AsyncOpenAI(max_retries=0, http_client=DefaultAsyncHttpxClient(...))`);
- as many clients built (and closed) per run as orchestrator built in its warm-up run;
- each request through `client.post("/chat/completions", body=..., options=...)` with the body as
  orchestrator sends it (no `create()` transform on either side), its response unread (the
  header `with_streaming_response` sets) and the timeout of
  the profile that serves its model (`effective_timeout_s`), the body read raw and parsed with
  `json.loads`, the streamed synthesis read line by line to its end, each chunk parsed;
- the same process: both sides run in this process, one `asyncio.run` per run, interleaved.

After the baseline's warm-up its requests are checked against the orchestrator's: the same
bodies and the same headers (the SDK's `x-stainless-read-timeout` carries the timeout). The
workflow is parsed once (a one-time cost, printed, not in the figures); each orchestrator run
opens its SQLite storage in ORCHESTRATOR_HOME, takes and releases its lease, writes its
checkpoints and run log: that is part of what is measured. The fake server runs in a child
process so that its threads do not compete with the client for the GIL.
The baseline's replay is `replay.py`. Interleaved with both, the same requests from a LangGraph
graph wired by hand (`langgraph_floor.HandWired`: LangGraph's own SQLite saver, or none). It also
runs the same workflow and plans on in-process test models, with no HTTP at all: what
orchestrator's own machinery costs a run; and LangGraph alone running the same shape with no-op
nodes (langgraph_floor.py), beside what the 1.10x goal allows a run over the baseline.
Usage: python benchmarks/overhead.py [--json] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orchestrator
from orchestrator.testing import TestModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import langgraph_floor  # beside this file
from replay import Baseline, counting_clients, fingerprint, new_client, record_bodies

from tests import fakehttp
from tests.fakeserver import FakeOpenAI

SIZES = (8, 32)
RUNS = 40
TASK = "Write a short guide to the history of the printing press, one section per part."
WORKFLOW = """
name: overhead-bench
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {concurrency: 64, max_subproblems: 64}
"""
Runner = Callable[[], Coroutine[Any, Any, None]]
SETUP = (
    "baseline: plain asyncio + openai in this process, one asyncio.run per run (as orchestrator);"
    " {clients} AsyncOpenAI per run (as many as orchestrator's ClientPool built), each built by"
    " the pool's own build_client (max_retries=0, one SSL context per process, the pool's"
    " connection limits); the orchestrator's bodies and per-request timeouts ({timeouts}) posted as"
    " orchestrator posts them (client.post, response unread, synthesis streamed), bodies read raw"
    " + json.loads; requests and headers checked equal to orchestrator's"
)


def plan_of(n: int) -> dict[str, Any]:
    return {
        "subproblems": [
            {"id": f"s{i}", "kind": "generate", "depends_on": [],
             "task": f"Write section {i} of the guide: one paragraph on period {i}."}
            for i in range(1, n + 1)
        ]
    }  # fmt: skip


@functools.cache
def workflow() -> orchestrator.Workflow:
    """Parsed once per process, as an application would; each `arun` is one measured run."""
    return orchestrator.Workflow(orchestrator.parse_workflow(WORKFLOW))


async def run_orchestrator() -> None:
    result = await workflow().arun(TASK)
    if result.status != "completed":
        raise SystemExit(f"orchestrator run did not complete: {result.status} {result.error}")


def serve(conn: Connection, nagle: bool) -> None:
    """The fake server, in its own process so that it does not compete for our GIL."""
    # tests/fakehttp.py sends headers and body in two writes: with Nagle on, a reused
    # connection holds each response ~40 ms (delayed ACK). Real endpoints do not.
    fakehttp.Handler.disable_nagle_algorithm = not nagle
    with FakeOpenAI() as server:
        conn.send(server.base_url)
        # Each message: reply with the requests since the last one, then reset for `plan`.
        while (plan := conn.recv()) is not None:
            requests = [(r.is_plan, r.body, r.headers) for r in server.requests]
            conn.send((requests, server.schema_errors))
            server.reset()  # zero latency everywhere
            server.configure_model("write-model")
            server.configure_model("think-model", reasoning=True)
            server.set_plan(plan)


def one_run(server: Connection, runner: Runner, plan: dict[str, Any]) -> tuple[float, Any, float]:
    """Wall time, the requests the server got, and this process's CPU time (every thread:
    the event loop, aiosqlite's); the server's CPU is the child's, not counted here."""
    server.send(plan)
    server.recv()  # reset; drop earlier requests
    cpu, started = time.process_time(), time.perf_counter()
    asyncio.run(runner())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    server.send(plan)
    requests, errors = server.recv()
    assert not errors, errors
    assert len(requests) == len(plan["subproblems"]) + 2, len(requests)  # no call repeated
    return wall, requests, cpu


def stored(home: str) -> dict[str, int]:
    """What orchestrator's one warm-up run left in its state directory."""
    with sqlite3.connect(Path(home) / "checkpoints.sqlite") as db:
        checkpoints = db.execute("select count(*) from checkpoints").fetchone()[0]
        writes = db.execute("select count(distinct task_id) from writes").fetchone()[0]
    with sqlite3.connect(Path(home) / "runs.sqlite") as db:
        calls = db.execute("select count(*) from calls").fetchone()[0]
    return {"checkpoints": checkpoints, "tasks_with_writes": writes, "calls_logged": calls}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def measure(server: Connection, n: int, runs: int, home: str) -> dict[str, Any]:
    plan = plan_of(n)
    with counting_clients() as built:  # warm-up, records the bodies
        _, requests, _ = one_run(server, run_orchestrator, plan)
    # ClientPool builds each client with DefaultAsyncHttpxClient: if none was counted, the
    # baseline would no longer be built like orchestrator's clients.
    assert built[0] >= 1, "orchestrator built no DefaultAsyncHttpxClient: update the baseline"
    store = stored(home)
    spec = workflow().spec
    timeouts = {p.model: p.effective_timeout_s for p in spec.models.values()}
    baseline = Baseline(record_bodies(requests), timeouts, built[0])
    _, replayed, _ = one_run(server, baseline.run, plan)  # warm-up
    assert fingerprint(replayed) == fingerprint(requests), "baseline requests differ"
    wired = [
        langgraph_floor.HandWired(
            baseline.bodies, baseline.call, baseline.stream, new_client, built[0], path
        )
        for path in (Path(home) / "hand-wired.sqlite", None)
    ]
    for side in wired:
        _, replayed, _ = one_run(server, side.run, plan)  # warm-up
        assert fingerprint(replayed) == fingerprint(requests), "hand-wired requests differ"
    orch, base, hand, bare, orch_cpu, base_cpu = [], [], [], [], [], []
    load = [os.getloadavg()[0]]
    for _ in range(runs):  # interleaved, so that load from elsewhere hits every side alike
        wall, _, cpu = one_run(server, run_orchestrator, plan)
        orch.append(wall)
        orch_cpu.append(cpu)
        wall, _, cpu = one_run(server, baseline.run, plan)
        base.append(wall)
        base_cpu.append(cpu)
        hand.append(one_run(server, wired[0].run, plan)[0])
        bare.append(one_run(server, wired[1].run, plan)[0])
    load.append(os.getloadavg()[0])
    oc, bc = statistics.median(orch_cpu), statistics.median(base_cpu)
    o, b = statistics.median(orch), statistics.median(base)
    calls = n + 2
    ratios = quartiles([x / y for x, y in zip(orch, base, strict=True)])
    per_call = quartiles([(x - y) * 1000 / calls for x, y in zip(orch, base, strict=True)])
    return {
        "subproblems": n,
        "calls": calls,
        "runs": runs,
        "orchestrator_s": round(o, 4),
        "baseline_s": round(b, 4),
        "orchestrator_iqr_s": [round(q, 4) for q in quartiles(orch)[::2]],
        "baseline_iqr_s": [round(q, 4) for q in quartiles(base)[::2]],
        "ratio": round(o / b, 2),
        "hand_wired_s": round(statistics.median(hand), 4),
        "hand_wired_ratio": round(statistics.median(hand) / b, 2),
        "hand_wired_no_checkpoints_s": round(statistics.median(bare), 4),
        "hand_wired_no_checkpoints_ratio": round(statistics.median(bare) / b, 2),
        "ratio_iqr": [round(q, 2) for q in ratios[::2]],
        "overhead_ms_per_call": round((o - b) * 1000 / calls, 2),
        "overhead_ms_per_call_iqr": [round(q, 2) for q in per_call[::2]],
        "orchestrator_cpu_s": round(oc, 4),
        "baseline_cpu_s": round(bc, 4),
        "cpu_ratio": round(oc / bc, 2),
        "cpu_overhead_ms_per_call": round((oc - bc) * 1000 / calls, 2),
        "load_1min": [round(x, 2) for x in load],
        "clients_per_run": built[0],
        "timeouts_s": timeouts,
        "stored_per_run": store,
        "orchestrator_runs_s": [round(w, 4) for w in orch],
        "baseline_runs_s": [round(w, 4) for w in base],
    }


def machinery_only(n: int, runs: int) -> dict[str, float]:
    """The same workflow and plan on in-process test models (`orchestrator.testing`): no HTTP
    at all, so what is left is orchestrator's own machinery per run (storage, lease, LangGraph,
    durable checkpoints, run log), one `asyncio.run` per run as above."""
    steps = plan_of(n)["subproblems"]
    models = {"thinker": TestModel(plan=steps), "writer": TestModel(plan=steps)}
    flow = orchestrator.Workflow(workflow().spec, models=models)
    walls, cpus = [], []
    for i in range(runs + 1):  # the first is a warm-up
        cpu, started = time.process_time(), time.perf_counter()
        result = flow.run(TASK)
        if result.status != "completed":
            raise SystemExit(f"test-model run did not complete: {result.status} {result.error}")
        if i:
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
    return {"subproblems": n, "wall_ms": round(statistics.median(walls) * 1000, 1),
            "cpu_ms": round(statistics.median(cpus) * 1000, 1)}  # fmt: skip


def overhead_fit(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Overhead (orchestrator - baseline) as a line through the smallest and the largest N: a
    fixed part per run plus a part per subproblem. Rough: each end is a median."""
    (n1, o1), (n2, o2) = (
        (r["subproblems"], (r["orchestrator_s"] - r["baseline_s"]) * 1000)
        for r in (rows[0], rows[-1])
    )
    per_sub = (o2 - o1) / (n2 - n1)
    return {"ms_per_run": round(o1 - n1 * per_sub, 1), "ms_per_subproblem": round(per_sub, 2)}


def parse_cost_ms(times: int = 20) -> float:
    """The one-time cost of parsing the workflow, left out of the figures."""
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        orchestrator.Workflow(orchestrator.parse_workflow(WORKFLOW))
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--runs", type=int, default=RUNS, help=f"timed runs per side (default {RUNS})"
    )
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
        os.environ.update(OPENAI_BASE_URL=ours.recv(), OPENAI_API_KEY="sk-dummy")
        rows = []
        for n in SIZES:  # a fresh state directory per size: the stored counts are one run's
            with tempfile.TemporaryDirectory() as home:
                os.environ["ORCHESTRATOR_HOME"] = home
                rows.append(measure(ours, n, args.runs, home))
    finally:
        ours.send(None)
        child.join(timeout=10)
    fit = overhead_fit(rows)
    parse_ms = parse_cost_ms()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ORCHESTRATOR_HOME"] = home
        alone = [machinery_only(n, args.runs) for n in SIZES]
    floor = langgraph_floor.floor(SIZES, args.runs)
    allowed = {r["subproblems"]: round(r["baseline_s"] * 100, 1) for r in rows}  # 10 %, in ms
    first = rows[0]
    timeouts = ", ".join(f"{m} {t:g} s" for m, t in first["timeouts_s"].items())
    setup = SETUP.format(clients=first["clients_per_run"], timeouts=timeouts)
    if args.json:
        print(json.dumps({"runs": args.runs, "latency_s": 0, "baseline_setup": setup,
                          "workflow_parse_ms": round(parse_ms, 2), "results": rows, "fit": fit,
                          "machinery_only": alone, "langgraph_alone": floor,
                          "allowed_at_1_10x_ms": allowed},
                         indent=2))  # fmt: skip
        return
    print(f"zero-latency fake server; median of {args.runs} interleaved runs per side after"
          f" 1 warm-up each; spread: quartiles (p25-p75)")  # fmt: skip
    print(setup)
    for r in rows:
        s = r["stored_per_run"]
        print(f"orchestrator, N={r['subproblems']}: opens its SQLite storage per run (lease taken"
              f" and released), {s['checkpoints']} checkpoints, pending writes of"
              f" {s['tasks_with_writes']} tasks, {s['calls_logged']} calls logged; workflow"
              f" parsed once per process ({parse_ms:.1f} ms, not counted)")  # fmt: skip
    print(f"{'N':>4}{'calls':>7}{'orch ms (p25-p75)':>22}{'base ms (p25-p75)':>22}"
          f"{'ratio (p25-p75)':>20}{'ms/call (p25-p75)':>22}{'load':>12}")  # fmt: skip
    for r in rows:
        oq, bq, rq, mq = (r["orchestrator_iqr_s"], r["baseline_iqr_s"], r["ratio_iqr"],
                          r["overhead_ms_per_call_iqr"])  # fmt: skip
        print(f"{r['subproblems']:>4}{r['calls']:>7}"
              f"{r['orchestrator_s'] * 1000:>8.1f} ({oq[0] * 1000:5.1f}-{oq[1] * 1000:5.1f})"
              f"{r['baseline_s'] * 1000:>8.1f} ({bq[0] * 1000:5.1f}-{bq[1] * 1000:5.1f})"
              f"{r['ratio']:>8.2f}x ({rq[0]:.2f}-{rq[1]:.2f})"
              f"{r['overhead_ms_per_call']:>9.2f} ({mq[0]:5.2f}-{mq[1]:5.2f})"
              f"{r['load_1min'][0]:>6.2f}>{r['load_1min'][1]:.2f}")  # fmt: skip
    for r in rows:
        print(f"client CPU per run (this process, all threads), N={r['subproblems']}:"
              f" orchestrator {r['orchestrator_cpu_s'] * 1000:.1f} ms, baseline"
              f" {r['baseline_cpu_s'] * 1000:.1f} ms: {r['cpu_ratio']:.2f}x,"
              f" {r['cpu_overhead_ms_per_call']:.2f} ms/call")  # fmt: skip
    print("orchestrator alone, on in-process test models (no HTTP): " + ", ".join(
        f"N={a['subproblems']} {a['wall_ms']:.1f} ms wall, {a['cpu_ms']:.1f} ms CPU"
        for a in alone))  # fmt: skip
    print("LangGraph wired by hand (the baseline's requests from a LangGraph graph;"
          " langgraph_floor.HandWired), its own SQLite saver with durability sync / no"
          " checkpointer: " + ", ".join(
          f"N={r['subproblems']} {r['hand_wired_s'] * 1000:.1f} ms {r['hand_wired_ratio']:.2f}x"
          f" / {r['hand_wired_no_checkpoints_s'] * 1000:.1f} ms"
          f" {r['hand_wired_no_checkpoints_ratio']:.2f}x" for r in rows)
          + " the baseline")  # fmt: skip
    print("LangGraph alone, the same shape with no-op nodes (langgraph_floor.py), ms wall:"
          f" {langgraph_floor.describe(floor)}; the 1.10x goal allows a run "
          + ", ".join(f"N={n} {ms:.1f} ms" for n, ms in allowed.items())
          + " over the baseline")  # fmt: skip
    print(f"overhead, rough fit through N={SIZES[0]} and N={SIZES[-1]}: {fit['ms_per_run']:.1f} ms"
          f" per run + {fit['ms_per_subproblem']:.2f} ms per subproblem")  # fmt: skip
    print("ratio orchestrator/baseline: " + ", ".join(
        f"N={r['subproblems']} {r['ratio']:.2f}x ({r['overhead_ms_per_call']:.2f} ms/call)"
        for r in rows) + f"; {args.runs} runs each")  # fmt: skip


if __name__ == "__main__":
    main()
