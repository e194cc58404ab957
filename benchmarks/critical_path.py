"""Wall time ÷ critical path of a run at fixed per-call latencies (DESIGN.md, "Scheduling").

Against tests/fakeserver.py; each subproblem's task carries its latency ("[0.4s] step c1"), plan
and synthesize take PLAN_S and SYNTH_S. (a) five independent subproblems plus a chain s6 -> s7,
all 0.4 s; (b) a 2 s reasoning subproblem beside a chain c1 -> c2 -> c3 -> c4 of 0.4 s steps;
(c) a uniform plan of eight independent 0.4 s steps; (d) a diamond and fan: d1, then f1..f4,
then d2 joining them, then g1 and g2, 0.4 s each. The goal is wall ≤ 1.05× the critical path.
On (b) it also runs the baseline we rejected: LangGraph graph-API supersteps where every solve
returns Sends for whatever looks ready.

The fake server runs in a child process, as overhead.py's does: a real endpoint does not share
the client's GIL, and in this process the server's threads waited for the event loop's (a
fan-out's last request reached it ~15 ms later). The workflow is parsed and its graph compiled
once per process, as an application (or `orchestrator serve`, or a batch) does; that one-time
cost is printed, not counted. Usage: python benchmarks/critical_path.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from openai.types.chat import ChatCompletionMessageParam

import orchestrator
from orchestrator.models.pool import build_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import fakehttp
from tests.fakeserver import FakeOpenAI, Recorded

PLAN_S = SYNTH_S = 0.4
REPS = 5
TARGET = 1.05
TASK = "Write a short report"
WORKFLOW = """
name: critical-path-bench
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {concurrency: 16}
"""
Sub = dict[str, Any]  # one Plan item: id, kind, task, depends_on


def sub(sid: str, latency: float, kind: str = "generate", deps: tuple[str, ...] = ()) -> Sub:
    return {"id": sid, "kind": kind, "task": f"[{latency}s] step {sid}", "depends_on": list(deps)}


SCENARIOS: dict[str, list[Sub]] = {  # critical path: plan + longest branch + synthesize
    "a: s1..s5 independent + chain s6->s7, 0.4 s each": [
        *(sub(f"s{i}", 0.4) for i in range(1, 7)),
        sub("s7", 0.4, deps=("s6",)),
    ],
    "b: r1 reason 2 s beside chain c1->c2->c3->c4, 0.4 s each": [
        sub("r1", 2.0, kind="reason"),
        *(sub(f"c{i}", 0.4, deps=(f"c{i - 1}",) if i > 1 else ()) for i in range(1, 5)),
    ],
    "c: uniform, u1..u8 independent, 0.4 s each": [sub(f"u{i}", 0.4) for i in range(1, 9)],
    "d: diamond and fan, d1 -> f1..f4 -> d2 -> g1, g2, 0.4 s each": [
        sub("d1", 0.4),
        *(sub(f"f{i}", 0.4, deps=("d1",)) for i in range(1, 5)),
        sub("d2", 0.4, deps=tuple(f"f{i}" for i in range(1, 5))),
        *(sub(f"g{i}", 0.4, deps=("d2",)) for i in range(1, 3)),
    ],
}
_TAG = re.compile(r"\[(\d+(?:\.\d+)?)s\] step (\S+)")
Runner = Callable[[list[Sub]], Coroutine[Any, Any, None]]


def tag(text: str) -> tuple[str, float]:
    """The (id, latency) a subproblem's task carries, or ("?", 0.0)."""
    match = _TAG.search(text)
    return (match[2], float(match[1])) if match else ("?", 0.0)


def classify(body: dict[str, Any]) -> tuple[str, float]:
    """(subproblem id, its latency) or ("synthesize", SYNTH_S) for a request; ("?", 0.0) else."""
    user = [m for m in body["messages"] if m.get("role") == "user"][-1]["content"]
    if user.startswith("Task:") and "\n\nResults:\n" in user:
        return "synthesize", SYNTH_S
    # Dependency answers echo earlier prompts, so only the last "Your subproblem:" counts.
    return tag(user.rpartition("Your subproblem:")[2])


def critical_path(plan: list[Sub]) -> float:
    by_id = {s["id"]: s for s in plan}
    finish: dict[str, float] = {}

    def done_at(sid: str) -> float:
        if sid not in finish:
            start = max((done_at(d) for d in by_id[sid]["depends_on"]), default=0.0)
            finish[sid] = start + tag(by_id[sid]["task"])[1]
        return finish[sid]

    return PLAN_S + max(done_at(s["id"]) for s in plan) + SYNTH_S


def audit(requests: list[Recorded], plan: list[Sub]) -> dict[str, Any]:
    """Calls per subproblem (and plan, synthesize), and the worst delay between a subproblem's
    dependencies (or the plan) ending at the server and its own request arriving there."""
    kinds = ["plan" if r.is_plan else classify(r.body)[0] for r in requests]
    counts = Counter(kinds)
    deps = {s["id"]: s["depends_on"] for s in plan}
    ended = {"plan": max(r.ended for r, k in zip(requests, kinds, strict=True) if k == "plan")}
    lag = 0.0
    for req, kind in sorted(zip(requests, kinds, strict=True), key=lambda rk: rk[0].started):
        if kind in deps and kind not in ended:
            lag = max(lag, req.started - max(ended[d] for d in ["plan", *deps[kind]]))
            ended[kind] = req.ended
    return {
        "calls": dict(sorted(counts.items(), key=lambda kv: (kv[0] != "plan", kv[0]))),
        "repeated_calls": sum(n - 1 for n in counts.values()),
        "never_called": sorted(deps.keys() - counts.keys()),
        "max_start_lag_ms": round(lag * 1000, 1),
    }


@functools.cache
def workflow() -> orchestrator.Workflow:
    """Parsed and compiled once per process; each `arun` is one measured run."""
    flow = orchestrator.Workflow(orchestrator.parse_workflow(WORKFLOW))
    flow._setup()  # compiles its graph (else the first run would)
    return flow


def parse_cost_ms(times: int = 20) -> float:
    """The one-time cost of parsing the workflow and compiling its graph, left out."""
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        orchestrator.Workflow(orchestrator.parse_workflow(WORKFLOW))._setup()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000


async def run_orchestrator(plan: list[Sub]) -> None:
    result = await workflow().arun(TASK)
    if result.status != "completed" or any(s.status != "done" for s in result.subproblems):
        raise SystemExit(f"orchestrator run did not complete: {result.status} {result.error}")


# --- The baseline we rejected (DESIGN.md, "Scheduling"): graph-API supersteps, where every
# --- solve's conditional edge returns a Send for each subproblem that looks ready to it.
class NaiveState(TypedDict, total=False):
    plan: list[Sub]
    results: Annotated[dict[str, str], lambda a, b: {**a, **b}]


async def run_naive(_: list[Sub]) -> None:
    # built as orchestrator's ClientPool builds its clients
    client = build_client(os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"])

    async def ask(model: str, text: str, **extra: Any) -> str:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": text}]
        reply = await client.chat.completions.create(model=model, messages=messages, **extra)
        return reply.choices[0].message.content or ""

    async def plan(state: NaiveState) -> NaiveState:
        fmt = {"type": "json_schema", "json_schema": {"name": "plan", "schema": {}}}
        raw = await ask("write-model", f"Task:\n{TASK}", response_format=fmt)
        return {"plan": json.loads(raw)["subproblems"], "results": {}}

    async def solve(item: Sub) -> NaiveState:
        model = "think-model" if item["kind"] == "reason" else "write-model"
        answer = await ask(model, f"Overall task:\n{TASK}\n\nYour subproblem:\n{item['task']}")
        return {"results": {item["id"]: answer}}

    async def synthesize(state: NaiveState) -> NaiveState:
        results = "\n".join(f"[{k}] {v}" for k, v in state["results"].items())
        await ask("write-model", f"Task:\n{TASK}\n\nResults:\n{results}")
        return {}

    def dispatch(state: NaiveState) -> list[Send] | str:
        done = state["results"]
        if len(done) == len(state["plan"]):
            return "synthesize"
        ready = [s for s in state["plan"] if s["id"] not in done]
        return [Send("solve", s) for s in ready if all(d in done for d in s["depends_on"])]

    graph = StateGraph(NaiveState)
    graph.add_node("plan", plan)
    graph.add_node("solve", cast(Any, solve))  # it takes a Send's Sub, not the state
    graph.add_node("synthesize", synthesize)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", dispatch, ["solve", "synthesize"])
    graph.add_conditional_edges("solve", dispatch, ["solve", "synthesize"])
    graph.add_edge("synthesize", END)
    async with client:
        await graph.compile().ainvoke({}, {"recursion_limit": 100})


def latency(body: dict[str, Any]) -> float:  # plan requests take server.plan_latency
    return classify(body)[1]


def serve(conn: Connection, nagle: bool) -> None:
    """The fake server in its own process; each message: ("reset", plan) before a run, then
    ("audit", plan) for what the run sent it; None stops it."""
    # tests/fakehttp.py sends headers and body in two writes: with Nagle on, a reused
    # connection holds each response ~40 ms (delayed ACK). Real endpoints do not.
    fakehttp.Handler.disable_nagle_algorithm = not nagle
    with FakeOpenAI() as server:
        conn.send(server.base_url)
        while (message := conn.recv()) is not None:
            kind, plan = message
            if kind == "audit":
                conn.send((audit(server.requests, plan), server.schema_errors))
                continue
            server.reset()
            server.plan_latency = PLAN_S
            server.set_plan({"subproblems": plan})
            server.configure_model("think-model", latency=latency, reasoning=True)
            server.configure_model("write-model", latency=latency)
            conn.send(None)


def measure(server: Connection, runner: Runner, plan: list[Sub]) -> dict[str, Any]:
    walls, audits = [], []
    for _ in range(REPS):
        server.send(("reset", plan))
        server.recv()
        started = time.monotonic()
        asyncio.run(runner(plan))
        walls.append(time.monotonic() - started)
        server.send(("audit", plan))
        checked, errors = server.recv()
        assert not errors, errors
        audits.append(checked)
    wall, critical = statistics.median(walls), critical_path(plan)
    worst = max(audits, key=lambda a: (a["repeated_calls"], a["max_start_lag_ms"]))
    return {"wall_s": round(wall, 3), "critical_s": critical, "ratio": round(wall / critical, 3),
            "walls_s": [round(w, 3) for w in walls], **worst}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep-nagle", action="store_true", help="keep the fake server's delay")
    args = parser.parse_args()
    rows: dict[str, dict[str, Any]] = {}
    spawn = multiprocessing.get_context("spawn")
    server, theirs = spawn.Pipe()
    child = spawn.Process(target=serve, args=(theirs, args.keep_nagle), daemon=True)
    child.start()
    try:
        with tempfile.TemporaryDirectory() as home:
            os.environ.update(
                ORCHESTRATOR_HOME=home, OPENAI_BASE_URL=server.recv(), OPENAI_API_KEY="sk-dummy"
            )
            for name, plan in SCENARIOS.items():
                rows[f"orchestrator {name[0]}"] = measure(server, run_orchestrator, plan)
            naive = SCENARIOS[list(SCENARIOS)[1]]
            rows["naive Send (rejected) b"] = measure(server, run_naive, naive)
    finally:
        server.send(None)
        child.join(timeout=10)
    parse_ms = parse_cost_ms()
    if args.json:
        print(json.dumps({"reps": REPS, "target_ratio": TARGET, "workflow_parse_ms":
                          round(parse_ms, 2), "results": rows}, indent=2))  # fmt: skip
        return
    print(f"plan {PLAN_S} s, synthesize {SYNTH_S} s; wall: median of {REPS} runs;"
          f" fake server in a child process, Nagle delay {'on' if args.keep_nagle else 'off'};"
          f" workflow parsed and compiled once ({parse_ms:.1f} ms, not counted)")  # fmt: skip
    print("\n".join(f"  {name}" for name in SCENARIOS))
    print("repeats, lag (latest start after its dependencies ended), calls: worst run")
    header = f"{'run':<26}{'wall s':>8}{'critical':>9}{'ratio':>8}{'repeats':>8}{'lag ms':>8}"
    print(header + "  calls")
    for label, r in rows.items():
        calls = " ".join(f"{k}:{v}" for k, v in r["calls"].items())
        print(f"{label:<26}{r['wall_s']:>8.3f}{r['critical_s']:>9.1f}{r['ratio']:>7.3f}x"
              f"{r['repeated_calls']:>8}{r['max_start_lag_ms']:>8.1f}  {calls}")  # fmt: skip
    ratios = ", ".join(f"{k} {v['ratio']:.3f}x" for k, v in rows.items())
    print(f"ratio wall/critical (target <= {TARGET}x): {ratios}")


if __name__ == "__main__":
    main()
