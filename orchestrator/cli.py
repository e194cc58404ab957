"""The `orchestrator` command: parse, call the SDK, print. Errors become one line and an exit code.

Exit codes: 0 the run completed; 1 it did not (failed, budget_exceeded); 2 bad spec or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.live import Live

from .errors import OrchestratorError, UsageError
from .events import AnswerToken, RunFinished
from .result import RunResult
from .runtime import Workflow
from .spec import load_workflow, workflow_json_schema
from .view import LiveRun, usage_table


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
    validate = sub.add_parser("validate", help="check a workflow file without running it")
    validate.add_argument("workflow")
    graph = sub.add_parser("graph", help="print the workflow as a Mermaid flowchart")
    graph.add_argument("workflow")
    sub.add_parser("schema", help="print the JSON Schema of workflow YAML files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            spec = load_workflow(args.workflow)
            roles = ", ".join(
                f"{role}→{spec.profile_for(role)[0]} ({spec.profile_for(role)[1].model})"
                for role in ("plan", "reason", "generate", "synthesize")
            )
            print(f"ok: {spec.name}: {len(spec.models)} model profiles; {roles}")
            return 0
        if args.command == "graph":
            print(Workflow(load_workflow(args.workflow)).mermaid())
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
    task = _read_task(args.input)
    if args.json:
        result = workflow.run(task, run_id=args.run_id)
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif sys.stdout.isatty() and not os.environ.get("ORCHESTRATOR_PLAIN"):
        result = asyncio.run(_run_live(workflow, task, args.run_id))
    else:
        result = asyncio.run(_run_plain(workflow, task, args.run_id))
    return 0 if result.status == "completed" else 1


async def _run_live(workflow: Workflow, task: str, run_id: str | None) -> RunResult:
    console = Console()
    view = LiveRun()
    result: RunResult | None = None
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        async for event in workflow.astream(task, run_id=run_id):
            if isinstance(event, RunFinished):
                result = event.result
            else:
                view.update(event)
                live.update(view.render())
    assert result is not None
    _summary(console, result)
    return result


async def _run_plain(workflow: Workflow, task: str, run_id: str | None) -> RunResult:
    """No terminal: the answer streams to stdout, the rest goes to stderr."""
    err = Console(stderr=True, width=max(Console(stderr=True).width, 120))
    result: RunResult | None = None
    async for event in workflow.astream(task, run_id=run_id):
        if isinstance(event, AnswerToken):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, RunFinished):
            result = event.result
    assert result is not None
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
