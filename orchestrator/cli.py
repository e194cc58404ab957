"""The `orchestrator` command: parse, call the SDK, print. Errors become one line and an exit code.

Exit codes: 0 the run completed; 1 it did not (failed, budget_exceeded); 2 bad spec or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.live import Live

from .ask import ask_answer, ask_decision
from .errors import OrchestratorError, UsageError
from .events import AnswerToken, Event, RunFinished
from .graph.build import picture
from .result import RunResult
from .runlog import RunLog
from .runtime import Workflow, last_result, orchestrator_home
from .spec import load_workflow, workflow_json_schema
from .view import LiveRun, runs_table, usage_table, wide_console


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run hard tasks through a planner, reasoning and generative models, "
        "and a synthesizer.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a workflow on a task")
    run.add_argument("workflow", help="a workflow YAML file, or the name of a shipped one")
    run.add_argument("--input", "-i", required=True, metavar="TEXT", help="the task; - reads stdin")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--run-id", help="an id for this run (default: generated)")
    run.add_argument(
        "--approve-plan",
        action="store_true",
        help="stop after planning: show the plan and ask to approve, edit or abort",
    )
    resume = sub.add_parser("resume", help="continue a run that failed or was killed")
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument("--json", action="store_true", help="print the result as JSON")
    runs = sub.add_parser("runs", help="list recent runs with status, cost and age")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    validate = sub.add_parser("validate", help="check a workflow file without running it")
    validate.add_argument("workflow")
    graph = sub.add_parser(
        "graph", help="print the workflow as a Mermaid flowchart and write an SVG picture"
    )
    graph.add_argument("workflow")
    graph.add_argument(
        "--out", metavar="FILE.svg", help="where to write the picture (default: NAME.svg)"
    )
    sub.add_parser("schema", help="print the JSON Schema of workflow YAML files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "validate":
            spec = load_workflow(args.workflow)
            roles = ", ".join(
                f"{role}→{spec.profile_for(role)[0]} ({spec.profile_for(role)[1].model})"
                for role in ("plan", "reason", "generate", "synthesize")
            )
            print(f"ok: {spec.name}: {len(spec.models)} model profiles; {roles}")
            return 0
        if args.command == "graph":
            spec = load_workflow(args.workflow)
            print(Workflow(spec).mermaid())
            out = Path(args.out or f"{spec.name}.svg")
            out.write_text(picture(spec), encoding="utf-8")
            print(f"wrote {out}", file=sys.stderr)
            return 0
        print(json.dumps(workflow_json_schema(), indent=2))
        return 0
    except OrchestratorError as exc:
        # Plain print: rich would wrap a long message over several lines.
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _read_task(value: str) -> str:
    if value != "-":
        return value
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("--input - reads the task from stdin, but nothing was piped in")
    return sys.stdin.read()


def _run(args: argparse.Namespace) -> int:
    workflow = Workflow(load_workflow(args.workflow))
    if args.approve_plan and args.input == "-":
        raise UsageError("--approve-plan reads decisions from stdin: give the task with --input")
    task = _read_task(args.input)
    events = workflow.astream(task, run_id=args.run_id, approve_plan=args.approve_plan)
    return _finish(workflow, _show(events, as_json=args.json), as_json=args.json)


def _resume(args: argparse.Namespace) -> int:
    row = RunLog(orchestrator_home()).get(args.run_id)
    if row is None:
        raise UsageError(f"no run with id {args.run_id}: `orchestrator runs` lists them")
    if not row.workflow_path:
        raise UsageError(
            f"run {args.run_id} was started from Python; resume it with Workflow.aresume()"
        )
    workflow = Workflow(load_workflow(row.workflow_path))
    if row.status in ("awaiting_approval", "awaiting_input"):
        result = asyncio.run(workflow.ainspect(args.run_id))
    else:
        result = _show(workflow.astream_resume(args.run_id), as_json=args.json)
    return _finish(workflow, result, as_json=args.json)


def _show(events: AsyncIterator[Event], *, as_json: bool) -> RunResult:
    """Drive a run's events to the screen (nothing, with --json) and return its result."""
    if as_json:
        return asyncio.run(last_result(events))
    if sys.stdout.isatty() and not os.environ.get("ORCHESTRATOR_PLAIN"):
        return asyncio.run(_run_live(events))
    return asyncio.run(_run_plain(events))


def _finish(workflow: Workflow, result: RunResult, *, as_json: bool) -> int:
    """Ask for plan decisions while the run awaits one; the exit code says if it completed."""
    while result.status in ("awaiting_approval", "awaiting_input"):
        if result.status == "awaiting_input":
            events = workflow.astream_resume(result.run_id, answer=ask_answer(result))
            result = _show(events, as_json=as_json)
            continue
        decision, plan = ask_decision(result)
        events = workflow.astream_resume(result.run_id, decision=decision, plan=plan)
        try:
            result = _show(events, as_json=as_json)
        except UsageError as exc:
            if decision != "edit":
                raise
            print(f"error: {exc.message}", file=sys.stderr)  # ask again
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return 0 if result.status == "completed" else 1


def _runs(args: argparse.Namespace) -> int:
    rows = RunLog(orchestrator_home()).recent(args.limit)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
    else:
        wide_console().print(runs_table(rows))
    return 0


async def _run_live(events: AsyncIterator[Event]) -> RunResult:
    console = Console()
    view = LiveRun()
    result: RunResult | None = None
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        async for event in events:
            if isinstance(event, RunFinished):
                result = event.result
                view.finish(result)
            else:
                view.update(event)
            live.update(view.render())
    assert result is not None
    _summary(console, result)
    return result


async def _run_plain(events: AsyncIterator[Event]) -> RunResult:
    """No terminal: the answer streams to stdout, the rest goes to stderr."""
    err = wide_console(stderr=True)
    result: RunResult | None = None
    streamed = False
    async for event in events:
        if isinstance(event, AnswerToken):
            streamed = True
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, RunFinished):
            result = event.result
    assert result is not None
    if not streamed:  # custom graphs produce their answer at the end, not as a token stream
        sys.stdout.write(result.output)
    sys.stdout.write("\n")
    sys.stdout.flush()
    _summary(err, result)
    return result


def _summary(console: Console, result: RunResult) -> None:
    if result.plan_note:
        console.print(f"[yellow]note:[/] {result.plan_note}", highlight=False)
    console.print(usage_table(result.usage))
    status = "green" if result.status == "completed" else "red"
    line = f"run {result.run_id}: [{status}]{result.status}[/]"
    if result.error:
        line += f" ({result.error.type}: {result.error.message})"
    console.print(line, highlight=False)


if __name__ == "__main__":
    sys.exit(main())
