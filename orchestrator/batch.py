"""Many tasks through one workflow: bounded concurrency, one budget, resumable from a results file.

    results = Workflow.from_yaml("graphs/quickstart.yaml").batch(["task one", "task two"])

Each task is an ordinary run (its checkpoints, run log and lease), so a batch stopped at any
point loses nothing: rerun with the same results file and finished tasks are skipped, while a
task that was cut off resumes from its checkpoint, paying only for what it had not finished.
A batch-wide `budget_usd` is the parent of every run's budget: each call's worst case must fit
both before it is sent, exactly as a single run's budget works.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import OrchestratorError, UsageError
from .models.budget import Budget
from .result import ErrorInfo, RunResult
from .run import stream_run
from .storage import RunRow, Storage, open_storage

if TYPE_CHECKING:
    from .runtime import Workflow

BATCH_SCOPE = "the batch budget (--budget-usd)"
SETTLED = ("completed", "awaiting_approval", "awaiting_input")
"""A task whose last result has one of these is not run again (a paused one waits for a person)."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class BatchTask:
    """One task of a batch: its id (the input's, or `line-N`) and its text."""

    id: str
    input: str


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


@dataclass(frozen=True)
class TaskResult:
    """A task's outcome: its run's result, or why it could not run (`error`, no `result`)."""

    task: BatchTask
    run_id: str
    result: RunResult | None
    error: ErrorInfo | None = None
    paid_before: float = 0.0
    """What the run's earlier attempts (an earlier batch's) had cost: not spent this time."""

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "failed"

    @property
    def cost_usd(self) -> float:
        return self.result.usage.cost_usd if self.result is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A results-file line: the task id, then exactly `orchestrator run --json`."""
        if self.result is not None:
            return {"id": self.task.id, **self.result.to_dict()}
        error = self.error.to_dict() if self.error else None
        return {"id": self.task.id, "run_id": self.run_id, "status": "failed", "error": error}


@dataclass
class BatchReport:
    """What a batch did: results in the order tasks finished, and what it left alone."""

    results: list[TaskResult] = field(default_factory=list)
    skipped: int = 0  # already settled in the results file
    not_started: int = 0  # left when the batch budget ran out
    cost_usd: float = 0.0  # spent by this invocation

    @property
    def all_completed(self) -> bool:
        return self.not_started == 0 and all(r.status == "completed" for r in self.results)


def parse_tasks(
    lines: Iterable[str], where: str = "input"
) -> tuple[list[BatchTask], list[BadLine]]:
    """Tasks from JSONL-ish lines: a JSON object with `input` (and `id`), a JSON string, or
    plain text. Blank lines are skipped; bad ones are returned with their line numbers."""
    tasks: list[BatchTask] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            task = _task(text, number)
        except ValueError as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        if task.id in seen:
            bad.append(BadLine(number, f"duplicate id {task.id!r}"))
            continue
        seen.add(task.id)
        tasks.append(task)
    return tasks, bad


def _task(text: str, number: int) -> BatchTask:
    if not text.startswith(("{", '"')):
        return BatchTask(f"line-{number}", text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not JSON ({exc.msg}); give an object, a JSON string or plain text"
        raise ValueError(message) from None
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("the task is empty")
        return BatchTask(f"line-{number}", value)
    if not isinstance(value, dict):
        raise ValueError("expected an object with input")
    task, ident = value.get("input"), value.get("id", f"line-{number}")
    if not isinstance(task, str) or not task.strip():
        raise ValueError('no "input" text')
    if not isinstance(ident, str | int) or isinstance(ident, bool) or str(ident) == "":
        raise ValueError('"id" must be a string or an integer')
    return BatchTask(str(ident), task)


def as_tasks(tasks: Iterable[str | BatchTask | Mapping[str, Any]]) -> list[BatchTask]:
    """SDK input: texts, `BatchTask`s or {"id", "input"} mappings (ids default to `task-N`)."""
    out: list[BatchTask] = []
    for i, task in enumerate(tasks, start=1):
        if isinstance(task, BatchTask):
            out.append(task)
        elif isinstance(task, str):
            out.append(BatchTask(f"task-{i}", task))
        else:
            out.append(BatchTask(str(task.get("id", f"task-{i}")), str(task["input"])))
    if len({t.id for t in out}) != len(out):
        raise UsageError("batch task ids must be unique")
    return out


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The last result line per task id in a results file (a torn last line is ignored)."""
    found: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return found
    with path.open(encoding="utf-8") as lines:
        for raw in lines:
            with contextlib.suppress(json.JSONDecodeError):
                line = json.loads(raw)
                if isinstance(line, dict) and "id" in line:
                    found[str(line["id"])] = line
    return found


def run_id_for(out: Path | None, task: BatchTask, salt: str) -> str:
    """Stable per (results file, task) so a rerun finds the task's run; else unique."""
    scope = hashlib.sha256(f"{out.resolve() if out else ''}\x1f{salt}".encode()).hexdigest()[:10]
    plain = _PLAIN_ID.fullmatch(task.id)
    ident = task.id if plain else hashlib.sha256(task.id.encode()).hexdigest()[:16]
    return f"b{scope}-{ident}"


Listener = Callable[[TaskResult], Awaitable[None] | None]
TaskRunner = Callable[[BatchTask, str], Awaitable[TaskResult]]
"""Runs one task under a run id to its result: in this process, or elsewhere (Ray)."""


class Batch:
    """One batch of tasks through `workflow`; `run()` once.

    With `runner`, tasks run where it sends them (`orchestrator.raybatch`) instead of here.
    """

    def __init__(
        self,
        workflow: Workflow,
        tasks: Sequence[BatchTask],
        *,
        concurrency: int = 4,
        budget_usd: float | None = None,
        out: Path | None = None,
        runner: Callable[[Batch], TaskRunner] | None = None,
    ) -> None:
        if concurrency < 1:
            raise UsageError("concurrency must be at least 1")
        if budget_usd is not None and budget_usd <= 0:
            raise UsageError("the batch budget must be more than $0")
        self.workflow, self.tasks, self.out = workflow, list(tasks), out
        self.concurrency = concurrency
        self.budget = Budget(budget_usd, scope=BATCH_SCOPE)
        # A fresh batch without a results file gets run ids of its own.
        self.salt = "" if out is not None else hashlib.sha256(str(id(self)).encode()).hexdigest()
        self.previous = read_results(out) if out is not None else {}
        self._runner = runner

    def pending(self) -> list[BatchTask]:
        return [t for t in self.tasks if self.previous.get(t.id, {}).get("status") not in SETTLED]

    async def run(self, on_result: Listener | None = None) -> BatchReport:
        report = BatchReport(skipped=len(self.tasks) - len(self.pending()))
        self.budget.spent_usd = sum(
            float(line.get("usage", {}).get("cost_usd", 0.0)) for line in self.previous.values()
        )  # what settled tasks paid; unfinished ones add theirs as they resume
        queue: asyncio.Queue[BatchTask] = asyncio.Queue()
        for task in self.pending():
            queue.put_nowait(task)
        with _appender(self.out) as sink:
            async with open_storage(self.workflow.home) as storage:
                runner = self._runner(self) if self._runner else self._local(storage)
                workers = [
                    asyncio.create_task(self._worker(queue, report, sink, runner, on_result))
                    for _ in range(min(self.concurrency, queue.qsize()))
                ]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for worker in workers:
                        worker.cancel()
        report.not_started = queue.qsize()
        return report

    async def _worker(
        self,
        queue: asyncio.Queue[BatchTask],
        report: BatchReport,
        sink: TextIO | None,
        runner: TaskRunner,
        on_result: Listener | None,
    ) -> None:
        # Once the batch budget has refused a call, no new task starts: rerun with more.
        while not queue.empty() and not self.budget.refused:
            task = queue.get_nowait()
            done = await runner(task, run_id_for(self.out, task, self.salt))
            report.results.append(done)
            report.cost_usd += done.cost_usd - done.paid_before
            if sink is not None:
                sink.write(json.dumps(done.to_dict(), ensure_ascii=False) + "\n")
                sink.flush()
            if on_result is not None:
                maybe = on_result(done)
                if maybe is not None:
                    await maybe

    def _local(self, storage: Storage) -> TaskRunner:
        """Tasks as runs in this process, each with the batch budget as its parent."""

        async def run_here(task: BatchTask, run_id: str) -> TaskResult:
            try:
                # Without a results file, no earlier batch can have started this run id.
                row, paid = await prior(storage, run_id) if self.out is not None else (None, 0.0)
                self.budget.spent_usd += paid
                result = await drive(self.workflow, task.input, run_id, row, self.budget)
            except OrchestratorError as exc:
                return TaskResult(task, run_id, None, ErrorInfo(type(exc).__name__, exc.message))
            return TaskResult(task, run_id, result, paid_before=paid)

        return run_here


async def prior(storage: Storage, run_id: str) -> tuple[RunRow | None, float]:
    """An earlier attempt at `run_id` that can be continued (its run-log row), and what the
    earlier attempts cost. One stopped before its first checkpoint (killed during the plan
    call) has nothing to continue from: no row, so it starts again."""
    row = await storage.runs.get_run(run_id)
    if row is None:
        return None, 0.0
    paid = sum(c.cost_usd for c in await storage.runs.calls(run_id))
    checkpoint = await storage.checkpointer.aget_tuple({"configurable": {"thread_id": run_id}})
    return (row if checkpoint is not None else None), paid


async def drive(
    workflow: Workflow, task: str, run_id: str, row: RunRow | None, parent: Budget | None
) -> RunResult:
    """Start the task's run, or resume it from its checkpoint if an earlier attempt began it
    (`row`); `parent` is the budget every call must also fit (the batch's)."""
    if row is not None and row.status in SETTLED:
        return await workflow.ainspect(run_id)  # settled, but its result line was lost
    setup = replace(workflow._setup(), batch_budget=parent)
    start = None if row is not None else workflow.start_state(task)
    result = None
    async for event in stream_run(setup, run_id, start=start):
        result = getattr(event, "result", result)
    if result is None:  # pragma: no cover - stream_run always ends with RunFinished
        raise UsageError(f"run {run_id} ended without a result")
    return result


@contextlib.contextmanager
def _appender(out: Path | None) -> Any:
    """The results file opened for appending, after dropping a line torn by a crash."""
    if out is None:
        yield None
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_file():
            data = out.read_bytes()
            if data and not data.endswith(b"\n"):
                out.write_bytes(data[: data.rfind(b"\n") + 1])
        sink = out.open("a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the results file {out}: {exc.strerror}") from None
    with sink:
        yield sink
