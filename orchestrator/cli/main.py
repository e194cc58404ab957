"""Parsing, dispatch to one function per command, and turning every failure into one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import OrchestratorError
from ..observe.logs import verbose
from ..tracing import flush_traces
from . import batch, commands, evaluate, serve, show
from .render import Stopped, quiet_stdout

CACHE_HELP = (
    "answer requests identical to ones answered before from the response cache, at no cost "
    "(every profile; `cache: true` does it for one)"
)

OTEL_FLAG = ("--otel",)
OTEL_OPTIONS: dict[str, Any] = {
    "nargs": "?",
    "const": True,
    "default": None,
    "metavar": "ENDPOINT",
    "help": "send the run's OpenTelemetry spans over OTLP/HTTP to ENDPOINT (default: "
    "$OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318); needs the otel extra",
}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": commands.run,
    "resume": commands.resume,
    "runs": commands.runs,
    "validate": commands.validate,
    "graph": commands.graph,
    "schema": commands.schema,
    "cache stats": commands.cache_stats,
    "cache clear": commands.cache_clear,
    "eval": evaluate.evaluate,
    "show": show.show,
    "serve": serve.serve,
    "batch": batch.batch,
}

VERBOSE_HELP = "log what orchestrator does on stderr: -v info, -vv debug (every call)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run hard tasks through a planner, reasoning and generative models, "
        "and a synthesizer.",
    )
    parser.add_argument("--verbose", "-v", action="count", default=0, help=VERBOSE_HELP)
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
    run.add_argument("--cache", action="store_true", help=CACHE_HELP)
    run.add_argument(*OTEL_FLAG, **OTEL_OPTIONS)
    resume = sub.add_parser("resume", help="continue a run that failed, was stopped or is paused")
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument("--json", action="store_true", help="print the result as JSON")
    resume.add_argument("--cache", action="store_true", help=CACHE_HELP)
    resume.add_argument(*OTEL_FLAG, **OTEL_OPTIONS)
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
    cache = sub.add_parser("cache", help="the response cache: what it holds, or empty it")
    actions = cache.add_subparsers(dest="subcommand", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="entries, size on disk, hits, oldest and newest")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    actions.add_parser("clear", help="remove every cached answer")
    evaluate.add_parser(sub)
    batch.add_parser(sub, CACHE_HELP)
    serve.add_parser(sub)
    show.add_parser(sub)
    for command in sub.choices.values():
        # `-v` after the command too, counted apart: a subcommand's parser starts a fresh count.
        command.add_argument(
            "--verbose", "-v", action="count", dest="verbose_after", default=0, help=VERBOSE_HELP
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "subcommand", None))))
    verbose(args.verbose + getattr(args, "verbose_after", 0))
    try:
        return COMMANDS[command](args)
    except OrchestratorError as exc:
        # Plain print: rich would wrap a long message over several lines.
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"interrupted{commands.resumable_hint()}", file=sys.stderr)
        return 130
    except Stopped as stop:
        print(f"terminated{commands.resumable_hint()}", file=sys.stderr)
        return stop.exit_code
    except BrokenPipeError:
        quiet_stdout()  # the reader went away (`| head`) outside a run's output
        return 141  # 128 + SIGPIPE, as a shell reports a process a closed pipe stopped
    finally:
        flush_traces()  # before the process ends, so a traced run's last spans are sent
