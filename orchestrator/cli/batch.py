"""`orchestrator batch`: a workflow over a JSONL file of tasks, with progress, resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..batch import Batch, BatchReport, BatchTask, TaskResult, parse_tasks
from ..errors import UsageError
from ..runtime import Workflow
from ..specload import load_workflow
from . import commands
from .progress import spending_progress
from .render import drive

SHOWN_ERRORS = 5  # failed tasks named on stderr; the results file has them all


def add_parser(sub: Any, cache_help: str) -> None:
    b = sub.add_parser("batch", help="run a workflow over many tasks from a JSONL file")
    b.add_argument("workflow", help="a workflow YAML file, or the name of a shipped one")
    b.add_argument(
        "--input", required=True, metavar="FILE",
        help='tasks, one per line: text, a JSON string, or {"id", "input"}; - reads stdin',
    )  # fmt: skip
    b.add_argument(
        "--out", required=True, metavar="FILE",
        help="results, one JSON line per task as it finishes; rerunning with it resumes",
    )  # fmt: skip
    b.add_argument("--concurrency", type=int, default=4, help="tasks at once (default 4)")
    b.add_argument("--budget-usd", type=float, help="bound the whole batch's spending")
    b.add_argument("--strict", action="store_true", help="a bad input line exits 2 (else skipped)")
    b.add_argument("--cache", action="store_true", help=cache_help)
    b.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS",
        help="run the tasks as Ray tasks: on the cluster at ADDRESS, or a local Ray instance",
    )  # fmt: skip


def batch(args: argparse.Namespace) -> int:
    tasks, bad = _read(args.input, strict=args.strict)
    commands._rerun_hint.append(f": rerun the same command to resume the batch ({args.out})")
    workflow = Workflow(load_workflow(args.workflow), cache=args.cache)
    runner = None
    if args.ray is not None:
        from ..raybatch import ray_runner  # Ray takes a second to import: only when asked

        runner = ray_runner(args.ray or None)
    job = Batch(
        workflow,
        tasks,
        concurrency=args.concurrency,
        budget_usd=args.budget_usd,
        out=Path(args.out),
        runner=runner,
    )
    report = drive(_with_progress(job))
    _summarise(report, len(tasks), args.out)
    return 0 if report.all_completed and not bad else 1


def _read(source: str, *, strict: bool) -> tuple[list[BatchTask], int]:
    """The tasks, and how many bad lines were skipped (each named on stderr)."""
    try:
        if source == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the tasks file {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text: give one task per line") from None
    tasks, bad = parse_tasks(lines)
    if bad and strict:
        first = bad[0]
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise UsageError(
            f"{source}:{first.line}: {first.reason}{more}; fix it, or drop --strict to skip "
            "bad lines"
        )
    for line in bad:
        print(f"{source}:{line.line}: {line.reason} (skipped)", file=sys.stderr)
    if not tasks:
        raise UsageError(f"no tasks in {source}: give one task per line")
    return tasks, len(bad)


async def _with_progress(job: Batch) -> BatchReport:
    with spending_progress("batch", len(job.pending())) as advance:

        def seen(done: TaskResult) -> None:
            advance(done.status != "completed", done.cost_usd)

        return await job.run(seen)


def _summarise(report: BatchReport, total: int, out: str) -> None:
    completed = sum(r.status == "completed" for r in report.results)
    unfinished = [r for r in report.results if r.status != "completed"]
    parts = [f"{completed} completed", f"{len(unfinished)} not completed"]
    if report.skipped:
        parts.append(f"{report.skipped} already done")
    if report.not_started:
        parts.append(f"{report.not_started} not started: the batch budget ran out")
    print(
        f"{total} tasks: {', '.join(parts)}; ${report.cost_usd:.4f} spent; results in {out}",
        file=sys.stderr,
    )
    for r in unfinished[:SHOWN_ERRORS]:
        why = r.error or (r.result.error if r.result else None)
        print(f"  {r.task.id}: {r.status}{f': {why.message}' if why else ''}", file=sys.stderr)
    if len(unfinished) > SHOWN_ERRORS:
        print(f"  ... and {len(unfinished) - SHOWN_ERRORS} more in {out}", file=sys.stderr)
