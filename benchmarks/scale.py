"""Scale on one machine: many concurrent runs, and a large batch against a plain asyncio script.

Against tests/fakeserver.py in a child process (its threads do not compete for our GIL), with a
3-subproblem plan (plan, three independent solves, a streamed synthesis: 5 calls per run):

1. `concurrent`: N runs started at once through the SDK (`asyncio.gather` of `Workflow.arun`)
   at 0.2 s model latency: wall time, runs/s, CPU ms per run (this process), MB per run (the
   peak resident-set growth over the idle process, divided by N), and runs that failed
   (a "database is locked" would show here).
2. `batch`: T tasks through `Workflow.abatch(concurrency=C)` at 0.05 s latency, against the same
   calls made by a plain asyncio + openai script: per task, the plan body, the three solve
   bodies at once, the synthesis body streamed — the very bodies orchestrator sent (recorded by
   the server), posted the way orchestrator posts them, through orchestrator's own ClientPool
   (the same clients, as many, taken in the same turn), C tasks at a time, in this process.
3. Both again with the storage in PostgreSQL (`ORCHESTRATOR_DATABASE_URL`), on a throwaway
   local cluster (tests/pg.py) — unless `--no-postgres`.

Usage: python benchmarks/scale.py [--runs 100,1000] [--tasks 10000] [--concurrency 100]
       [--no-postgres] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import orchestrator
from orchestrator.models.openai import RAW_RESPONSE
from orchestrator.models.pool import ClientPool
from tests.fakeserver import FakeOpenAI

PLAN = {
    "subproblems": [
        {"id": f"s{i}", "kind": "generate", "task": f"Write part {i} of the answer.",
         "depends_on": []}
        for i in range(1, 4)
    ]
}  # fmt: skip
WORKFLOW = """
name: scale-bench
models:
  w: {model: w-model, price: {input: 0.15, output: 0.6}}
roles: {plan: w, reason: w, generate: w, synthesize: w}
"""
PAGE = os.sysconf("SC_PAGE_SIZE")
TASK_ID = re.compile(r"TASK-\d{6}")


def serve(conn: Connection, latency: float) -> None:
    """The fake server, in its own process. Messages: ("bodies",) → the requests since the last
    ask (then forgotten); None → stop."""
    with FakeOpenAI() as server:
        server.configure_model("w-model", latency=latency)
        server.set_plan(PLAN)
        conn.send(server.base_url)
        while (message := conn.recv()) is not None:
            conn.send([r.body for r in server.requests])
            server.reset()
            server.configure_model("w-model", latency=message)
            server.set_plan(PLAN)


@contextlib.contextmanager
def fake_server(latency: float) -> Iterator[tuple[str, Connection]]:
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(theirs, latency), daemon=True)
    child.start()
    try:
        yield ours.recv(), ours
    finally:
        ours.send(None)
        child.join(timeout=10)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


async def sample_peak(stop: asyncio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_bytes())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def concurrent(workflow: orchestrator.Workflow, n: int) -> dict[str, Any]:
    await workflow.arun("warm up")  # imports, the compiled graph, the storage schema
    base, peak, stop = rss_bytes(), [0], asyncio.Event()
    sampler = asyncio.create_task(sample_peak(stop, peak))
    cpu, wall = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(workflow.arun(f"task {i}") for i in range(n)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stop.set()
    await sampler
    failed = [r for r in results if r.status != "completed"]
    return {
        "runs": n,
        "wall_s": round(wall, 2),
        "runs_per_s": round(n / wall, 1),
        "cpu_ms_per_run": round(1000 * cpu / n, 1),
        "mb_per_run": round((peak[0] - base) / n / 2**20, 3),
        "failed": len(failed),
        "errors": sorted({r.error.message for r in failed if r.error})[:3],
    }


async def batch(workflow: orchestrator.Workflow, tasks: int, concurrency: int) -> dict[str, Any]:
    await workflow.arun("warm up")
    cpu, wall = time.process_time(), time.perf_counter()
    results = await workflow.abatch(
        [f"TASK-{i:06d}: write a short note." for i in range(tasks)], concurrency=concurrency
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = sum(r.status == "completed" for r in results)
    return {
        "tasks": tasks,
        "completed": done,
        "wall_s": round(wall, 2),
        "tasks_per_s": round(tasks / wall, 1),
        "cpu_ms_per_task": round(1000 * cpu / tasks, 1),
    }


def group_by_task(bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recorded bodies, per task (every prompt names its run's task): plan, three solves,
    the synthesis."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        found = TASK_ID.search(json.dumps(body["messages"]))
        if found:  # the warm-up run has none
            tasks.setdefault(found.group(), []).append(body)
    grouped = [sorted(b, key=_order) for b in tasks.values()]
    assert all(len(b) == 5 for b in grouped), "a task did not make 5 calls"
    return grouped


def _order(body: dict[str, Any]) -> int:
    if body.get("response_format"):
        return 0  # the plan asks for its JSON schema
    return 2 if body.get("stream") else 1


async def baseline(
    url: str, per_task: list[list[dict[str, Any]]], concurrency: int
) -> dict[str, Any]:
    # orchestrator's own ClientPool, counting the tasks in flight as runs are counted: the same
    # clients, as many of them, taken in the same turn.
    pool = ClientPool()
    options: Any = {"headers": {RAW_RESPONSE: "stream"}, "timeout": 120.0}

    async def post(client: openai.AsyncOpenAI, body: dict[str, Any]) -> None:
        response: Any = await client.post(
            "/chat/completions", cast_to=object, body=body, options=options
        )
        try:
            if body.get("stream"):
                async for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        json.loads(line[6:])
            else:
                json.loads(await response.read())
        finally:
            await response.close()

    gate = asyncio.Semaphore(concurrency)

    async def task(bodies: list[dict[str, Any]]) -> None:
        async with gate:
            pool.runs += 1
            try:
                client = pool.get(url, "sk-bench")
                plan, *solves, synth = bodies
                await post(client, plan)
                await asyncio.gather(*(post(client, b) for b in solves))
                await post(client, synth)
            finally:
                pool.runs -= 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(task(b) for b in per_task))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await pool.aclose()
    n = len(per_task)
    return {"tasks": n, "wall_s": round(wall, 2), "tasks_per_s": round(n / wall, 1),
            "cpu_ms_per_task": round(1000 * cpu / n, 1)}  # fmt: skip


def measure(args: argparse.Namespace, storage: str) -> dict[str, Any]:
    out: dict[str, Any] = {"storage": storage, "concurrent": [], "batch": None}
    spec = orchestrator.parse_workflow(WORKFLOW)
    with fake_server(0.2) as (url, conn):
        os.environ.update(OPENAI_BASE_URL=url, OPENAI_API_KEY="sk-bench")
        for n in args.runs:
            home = Path(tempfile.mkdtemp(prefix="scale-"))
            out["concurrent"].append(
                asyncio.run(concurrent(orchestrator.Workflow(spec, home=home), n))
            )
            print(storage, "concurrent", out["concurrent"][-1], file=sys.stderr)
        conn.send(0.05)
        conn.recv()
        home = Path(tempfile.mkdtemp(prefix="scale-"))
        ours = asyncio.run(
            batch(orchestrator.Workflow(spec, home=home), args.tasks, args.concurrency)
        )
        conn.send(0.05)
        per_task = group_by_task(conn.recv())
        theirs = asyncio.run(baseline(url, per_task, args.concurrency))
        ours["vs_plain_asyncio"] = round(ours["wall_s"] / theirs["wall_s"], 2)
        out["batch"] = {"orchestrator": ours, "plain_asyncio": theirs}
        print(storage, "batch", out["batch"], file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="100,1000", help="concurrent run counts")
    parser.add_argument("--tasks", type=int, default=10_000, help="batch size")
    parser.add_argument("--concurrency", type=int, default=100, help="batch concurrency")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.runs = [int(n) for n in args.runs.split(",")]
    os.environ.pop("ORCHESTRATOR_DATABASE_URL", None)
    figures = [measure(args, "sqlite")]
    if not args.no_postgres:
        from tests.pg import postgres_server

        with postgres_server() as server:
            os.environ["ORCHESTRATOR_DATABASE_URL"] = server.url(server.create_database())
            figures.append(measure(args, "postgres"))
            os.environ.pop("ORCHESTRATOR_DATABASE_URL")
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    header = ("storage", "runs", "wall s", "runs/s", "CPU ms/run", "MB/run", "failed")
    print("  ".join(f"{h:>10}" for h in header))
    for f in figures:
        for c in f["concurrent"]:
            row = (f["storage"], c["runs"], c["wall_s"], c["runs_per_s"], c["cpu_ms_per_run"],
                   c["mb_per_run"], c["failed"])  # fmt: skip
            print("  ".join(f"{v:>10}" for v in row))
    for f in figures:
        o, b = f["batch"]["orchestrator"], f["batch"]["plain_asyncio"]
        print(
            f"{f['storage']}: batch of {o['tasks']} at 0.05 s, concurrency {args.concurrency}: "
            f"orchestrator {o['wall_s']} s ({o['tasks_per_s']}/s, "
            f"{o['cpu_ms_per_task']} ms CPU/task); plain asyncio {b['wall_s']} s "
            f"({b['tasks_per_s']}/s, {b['cpu_ms_per_task']} ms CPU/task): "
            f"{o['vs_plain_asyncio']}x"
        )


if __name__ == "__main__":
    main()
