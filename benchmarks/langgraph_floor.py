"""LangGraph alone, and LangGraph wired by hand: the floor under orchestrator's overhead.

orchestrator runs every workflow as a LangGraph graph (DESIGN.md: LangGraph runs graphs and
checkpoints). This times LangGraph by itself running the shape of overhead.py's workflow, with
nodes that do nothing: a plan node, N subproblems sent at once (`Send`), a synthesis node. It is
compiled once, and each run gets its own `asyncio.run` and thread id, as overhead.py's runs do.
Three ways:

- no checkpointer: LangGraph's own scheduling only;
- `InMemorySaver`, durability "sync": checkpoints kept, but in a dict, never on disk;
- LangGraph's `AsyncSqliteSaver`, durability "sync", opened and closed each run, as orchestrator
  opens its storage each run: durable checkpoints, as overhead.py's goal asks for.

Whatever orchestrator itself adds comes on top of these; none of them makes an HTTP call.

`HandWired` (used by overhead.py) is the same graph with nodes that make overhead.py's baseline
requests, with LangGraph's own SQLite saver and durability "sync" (or no checkpointer): what a
developer wiring the calls into LangGraph by hand would run.
Usage: python benchmarks/langgraph_floor.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

SIZES = (8, 32)
RUNS = 40
MODES = ("none", "memory", "sqlite")


class State(TypedDict, total=False):
    task: str
    plan: list[str]
    answers: Annotated[list[str], operator.add]
    answer: str


class Item(TypedDict):
    item: str


def build(n: int) -> StateGraph[Any]:
    """plan -> n solves at once -> synthesize, each node doing nothing but return its update."""

    async def plan(state: State) -> dict[str, Any]:
        return {"plan": [f"s{i}" for i in range(1, n + 1)]}

    async def solve(state: Item) -> dict[str, Any]:
        return {"answers": [state["item"]]}

    async def synthesize(state: State) -> dict[str, Any]:
        return {"answer": " ".join(state["answers"])}

    return wire(plan, solve, synthesize)


def wire(plan: Any, solve: Any, synthesize: Any) -> StateGraph[Any]:
    """plan -> every step of its plan at once -> synthesize."""

    def fan_out(state: State) -> list[Send]:
        return [Send("solve", {"item": step}) for step in state["plan"]]

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("solve", solve)
    graph.add_node("synthesize", synthesize)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["solve"])
    graph.add_edge("solve", "synthesize")
    graph.add_edge("synthesize", END)
    return graph


async def drain(app: CompiledStateGraph[Any], thread: str, durable: bool) -> None:
    config: Any = {"configurable": {"thread_id": thread}}
    options: Any = {"durability": "sync"} if durable else {}
    final = await app.ainvoke({"task": "t"}, config, **options)
    assert final.get("answer"), final  # every node ran


async def run_on(app: CompiledStateGraph[Any], path: Path | None, thread: str) -> None:
    """One run of `app`, compiled without a checkpointer: bound (a copy, as orchestrator binds
    its graph) to LangGraph's SQLite saver at `path`, opened for the run and closed after it,
    with durability "sync"; or, with no `path`, run with no checkpointer."""
    if path is None:
        await drain(app, thread, durable=False)
        return
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await drain(app.copy(update={"checkpointer": saver}), thread, durable=True)


def runner(mode: str, n: int, path: Path) -> Callable[[str], Coroutine[Any, Any, None]]:
    graph = build(n)
    if mode == "memory":
        kept = graph.compile(checkpointer=InMemorySaver())
        return lambda thread: drain(kept, thread, durable=True)
    compiled, on = graph.compile(), (path if mode == "sqlite" else None)
    return lambda thread: run_on(compiled, on, thread)


Body = dict[str, Any]
_client: ContextVar[Any] = ContextVar("client")  # the run's client; tasks copy the context


@dataclass(frozen=True)
class HandWired:
    """overhead.py's baseline requests made by a LangGraph graph wired by hand: plan, every
    solve at once (`Send`), the streamed synthesis; LangGraph's own `AsyncSqliteSaver` opened
    per run (each run has its own event loop, as orchestrator's do) with durability "sync", or
    no checkpointer.
    The clients, requests and reading are the baseline's own functions."""

    bodies: list[Body]  # plan first, synthesize last
    call: Callable[[Any, Body], Awaitable[Any]]  # post a body, read and parse the answer
    stream: Callable[[Any, Body], Awaitable[None]]  # post a body, read the stream to its end
    new_client: Callable[[], Any]
    clients: int  # built (and closed) per run, as the baseline does
    path: Path | None  # the checkpoint file; None: no checkpointer at all (not durable)

    @cached_property
    def graph(self) -> CompiledStateGraph[Any]:
        """Compiled once; each run binds a copy to its saver (`run_on`)."""
        plan_body, *solve_bodies, synth_body = self.bodies

        async def plan(state: State) -> dict[str, Any]:
            answer = await self.call(_client.get(), plan_body)
            steps = json.loads(answer["choices"][0]["message"]["content"])["subproblems"]
            assert len(steps) == len(solve_bodies)
            return {"plan": [str(i) for i in range(len(steps))]}

        async def solve(state: Item) -> dict[str, Any]:
            answer = await self.call(_client.get(), solve_bodies[int(state["item"])])
            return {"answers": [answer["choices"][0]["message"]["content"]]}

        async def synthesize(state: State) -> dict[str, Any]:
            await self.stream(_client.get(), synth_body)
            return {"answer": "streamed"}

        return wire(plan, solve, synthesize).compile()

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            clients = [self.new_client() for _ in range(self.clients)]
            for c in clients:
                stack.push_async_callback(c.close)
            _client.set(clients[0])
            await run_on(self.graph, self.path, uuid.uuid4().hex)


def checkpoints_per_run(path: Path, runs: int) -> float:
    with sqlite3.connect(path) as db:
        count: int = db.execute("select count(*) from checkpoints").fetchone()[0]
    return count / runs


def measure(mode: str, n: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "checkpoints.sqlite"
        one = runner(mode, n, path)
        walls, cpus = [], []
        for i in range(runs + 1):  # the first is a warm-up
            cpu, started = time.process_time(), time.perf_counter()
            asyncio.run(one(f"run-{i}"))
            if i:
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
        stored = checkpoints_per_run(path, runs + 1) if mode == "sqlite" else None
    return {"mode": mode, "subproblems": n, "wall_ms": round(statistics.median(walls) * 1000, 2),
            "cpu_ms": round(statistics.median(cpus) * 1000, 2),
            "checkpoints_per_run": stored}  # fmt: skip


def floor(sizes: tuple[int, ...] = SIZES, runs: int = RUNS) -> list[dict[str, Any]]:
    return [measure(mode, n, runs) for n in sizes for mode in MODES]


def describe(rows: list[dict[str, Any]]) -> str:
    by_size: dict[int, list[str]] = {}
    for r in rows:
        by_size.setdefault(r["subproblems"], []).append(f"{r['mode']} {r['wall_ms']:.1f}")
    return "; ".join(f"N={n}: " + ", ".join(parts) for n, parts in by_size.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = floor(runs=args.runs)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"LangGraph alone, no-op nodes, median of {args.runs} runs (one asyncio.run each)")
    for r in rows:
        stored = r["checkpoints_per_run"]
        extra = f", {stored:g} checkpoints a run" if stored else ""
        print(f"N={r['subproblems']:>3} {r['mode']:>7}: {r['wall_ms']:6.2f} ms wall,"
              f" {r['cpu_ms']:6.2f} ms CPU{extra}")  # fmt: skip


if __name__ == "__main__":
    main()
