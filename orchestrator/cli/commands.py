"""One function per `orchestrator` command; each returns the exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..diagram import mermaid, svg
from ..errors import UsageError
from ..result import RunResult
from ..resume import Edit
from ..run import new_run_id
from ..runtime import Workflow
from ..spec import ROLES
from ..specload import load_workflow, workflow_json_schema
from ..storage import CacheStats, RunRow, open_storage, orchestrator_home
from .ask import ask_answer, ask_decision
from .input import read_task
from .render import drive, show, write_out
from .view import runs_table, wide_console

_current_run: list[str] = []  # the run this process is running, for the interrupt message


_rerun_hint: list[str] = []  # how to continue what this process runs, if not one run


def resumable_hint() -> str:
    """What to tell someone who stopped a run: how to continue it."""
    if _rerun_hint:
        return _rerun_hint[-1]
    if not _current_run:
        return ""
    run_id = _current_run[-1]
    return f": run {run_id} can be continued with `orchestrator resume {run_id}`"


def run(args: argparse.Namespace) -> int:
    workflow = Workflow(load_workflow(args.workflow), cache=args.cache, tracing=args.otel)
    if args.approve_plan and args.input == "-":
        raise UsageError("--approve-plan reads decisions from stdin: give the task with --input")
    task = read_task(args.input)
    run_id = args.run_id or new_run_id()
    _current_run.append(run_id)
    events = workflow.astream(task, run_id=run_id, approve_plan=args.approve_plan)
    return _settle(workflow, show(events, as_json=args.json), as_json=args.json)


def resume(args: argparse.Namespace) -> int:
    row = drive(_run_row(args.run_id))
    if row is None:
        raise UsageError(f"no run with id {args.run_id}: `orchestrator runs` lists them")
    if not row.workflow_path:
        raise UsageError(
            f"run {args.run_id} was started from Python; resume it with Workflow.aresume()"
        )
    workflow = Workflow(load_workflow(row.workflow_path), cache=args.cache, tracing=args.otel)
    _current_run.append(args.run_id)
    if row.status in ("awaiting_approval", "awaiting_input"):
        result = drive(workflow.ainspect(args.run_id))
    else:
        result = show(workflow.astream_resume(args.run_id), as_json=args.json)
    return _settle(workflow, result, as_json=args.json)


async def _run_row(run_id: str) -> RunRow | None:
    async with open_storage(orchestrator_home()) as storage:
        return await storage.runs.get_run(run_id)


def _settle(workflow: Workflow, result: RunResult, *, as_json: bool) -> int:
    """Ask for decisions while the run is paused; the exit code says if it completed."""
    while result.status in ("awaiting_approval", "awaiting_input"):
        if result.status == "awaiting_input":
            events = workflow.astream_resume(result.run_id, ask_answer(result))
            result = show(events, as_json=as_json)
            continue
        decision = ask_decision(result)
        try:
            result = show(workflow.astream_resume(result.run_id, decision), as_json=as_json)
        except UsageError as exc:
            if not isinstance(decision, Edit):
                raise
            print(f"error: {exc.message}", file=sys.stderr)  # a bad edit: ask again
    if as_json:
        write_out(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return 0 if result.status == "completed" else 1


def runs(args: argparse.Namespace) -> int:
    rows = drive(_recent(args.limit))
    if args.json:
        write_out(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False) + "\n")
    else:
        wide_console().print(runs_table(rows))
    return 0


async def _recent(limit: int) -> list[RunRow]:
    async with open_storage(orchestrator_home()) as storage:
        return await storage.runs.recent_runs(limit)


def validate(args: argparse.Namespace) -> int:
    spec = load_workflow(args.workflow)
    roles = ", ".join(
        f"{role}→{spec.profile_for(role)[0]} ({spec.profile_for(role)[1].model})" for role in ROLES
    )
    print(f"ok: {spec.name}: {len(spec.models)} model profiles; {roles}")
    return 0


def graph(args: argparse.Namespace) -> int:
    spec = load_workflow(args.workflow)
    write_out(mermaid(spec) + "\n")
    out = Path(args.out or f"{spec.name}.svg")
    try:
        out.write_text(svg(spec), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote {out}", file=sys.stderr)
    return 0


def schema(args: argparse.Namespace) -> int:
    write_out(json.dumps(workflow_json_schema(), indent=2) + "\n")
    return 0


def cache_stats(args: argparse.Namespace) -> int:
    stats, hits = drive(_cache_stats())
    if args.json:
        figures = {**asdict(stats), "hits": hits}
        write_out(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        return 0
    lines = [f"cache: {stats.location}", f"answers: {stats.entries} ({_size(stats.size_bytes)})"]
    if stats.oldest is not None and stats.newest is not None:
        lines.append(f"stored: {_when(stats.oldest)} to {_when(stats.newest)}")
    lines.append(f"hits: {hits} calls answered from the cache (run log)")
    write_out("\n".join(lines) + "\n")
    return 0


async def _cache_stats() -> tuple[CacheStats, int]:
    async with open_storage(orchestrator_home()) as storage:
        return await storage.cache.stats(), await storage.runs.count_cached_calls()


def cache_clear(args: argparse.Namespace) -> int:
    removed, after = drive(_cache_clear())
    write_out(f"removed {removed} cached answers from {after.location}\n")
    return 0


async def _cache_clear() -> tuple[int, CacheStats]:
    async with open_storage(orchestrator_home()) as storage:
        return await storage.cache.clear(), await storage.cache.stats()


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
