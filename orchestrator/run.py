"""One run's lifecycle: start or resume it, once, and settle how it ended.

`stream_run` is the one path every run takes (new, resumed, or continued after a decision):

1. open the storage and take the run's lease, so no other process runs it at the same time;
2. check the request against the checkpoint (a new id must be new, a resumed run must exist,
   a paused run needs a decision that answers what it waits for);
3. connect the models with this run's budget (what earlier attempts spent counts) and ledger
   (every billed call is written to the run log as it happens);
4. stream the graph, following its state and events;
5. settle the final status once: completed, failed, budget_exceeded, awaiting_*, or, when a
   signal stopped it, interrupted (resumable, and nothing finished is paid for again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from .errors import BudgetExceededError, RunError, UsageError
from .events import (
    CallFinished,
    CallRetried,
    Event,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
)
from .graph.context import RunContext, emit
from .graph.nodes import graph_steps
from .graph.review import validate_edit
from .lease import leased
from .models.base import CallRecord, ChatModel
from .models.budget import Budget
from .models.connect import connect
from .models.embeddings import Embedder, embedder_for
from .models.ledger import Ledger
from .models.openai import ClientPool
from .models.pool import shared_pool
from .models.retry import FailedAttempt
from .result import ErrorInfo, RunResult, Status, Usage
from .resume import (
    ABORTED,
    Decision,
    Edit,
    Pause,
    PlanReview,
    Question,
    command_for,
    read_pause,
    waiting_message,
)
from .spec import WorkflowSpec
from .storage import RunLog, Storage, describe_location, open_storage
from .tracing import RunTracer, TracingOption
from .tracker import RunTracker

log = logging.getLogger(__name__)

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    """A run id is shown in commands to copy (`orchestrator resume ID`): keep it plain."""
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"run id {run_id[:40]!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run_id


@dataclass(frozen=True)
class RunSetup:
    """What a run needs from its `Workflow`."""

    spec: WorkflowSpec
    models: Mapping[str, ChatModel]
    functions: Mapping[str, Callable[..., Any]]
    home: Path
    graph: CompiledStateGraph[Any, RunContext, Any, Any]
    """The workflow's graph, compiled once without a checkpointer; each run uses a copy bound
    to its storage's (compiling it again per run cost about 4 ms)."""
    policy: str | None = None
    """A policy for every step, overriding the workflow's (an evaluation's)."""
    cache: bool = False
    """Every profile answers from the response cache (else only those with `cache: true`)."""
    cache_salt: str = ""
    """Keeps this workflow's cached answers apart from identical requests' (a repeat's)."""
    tracing: TracingOption = None
    """Where OpenTelemetry spans go (see `orchestrator.tracing`); None: as the environment says."""
    batch_budget: Budget | None = None
    """The budget of the batch this run is part of: each call must fit it as well."""

    def bound_graph(self, storage: Storage) -> CompiledStateGraph[Any, RunContext, Any, Any]:
        return self.graph.copy(update={"checkpointer": storage.checkpointer})


def paused_status(pause: Pause) -> tuple[Status, str | None]:
    """The status of a run paused at `pause`, and the question it asks (if any)."""
    if isinstance(pause, Question):
        return "awaiting_input", pause.message
    return "awaiting_approval", None


async def stream_run(
    setup: RunSetup,
    run_id: str,
    *,
    start: dict[str, Any] | None = None,
    decision: Decision | None = None,
) -> AsyncIterator[Event]:
    """Start (`start` is the graph input), resume (neither), or continue with a `decision`."""
    async with (
        open_storage(setup.home) as storage,
        leased(storage, run_id),
        shared_pool() as pool,
    ):
        session = _Session(setup, storage, run_id, pool)
        graph_input = await session.prepare(start, decision)
        try:
            async with contextlib.aclosing(session.events(graph_input, start)) as events:
                async for event in events:
                    session.tracer.see(event)
                    yield event
        finally:
            session.tracer.close()


class _Session:
    """One attempt at one run, between taking its lease and giving it back."""

    def __init__(self, setup: RunSetup, storage: Storage, run_id: str, pool: ClientPool) -> None:
        self.setup, self.storage, self.run_id = setup, storage, run_id
        self.graph = setup.bound_graph(storage)
        self.tracer = RunTracer(setup.spec, run_id, setup.tracing)
        self.config: Any = {"configurable": {"thread_id": run_id}, **self.tracer.config()}
        self.tracker = RunTracker(setup.spec)
        self.ledger = Ledger(
            self._record, on_attempt=self._attempt_failed, on_exchange=self.tracer.call
        )
        self.pool = pool  # shared with the runs in flight beside it: warm connections
        self._step_rows: list[asyncio.Future[None]] = []

    async def _record(self, call: CallRecord) -> None:
        await self.storage.runs.add_call(self.run_id, call)
        emit(CallFinished(call))

    async def _attempt_failed(self, attempt: FailedAttempt) -> None:
        await self.storage.runs.add_attempt(self.run_id, attempt)
        if attempt.wait_s is not None:
            emit(CallRetried(attempt))

    def _log_step(self, event: object) -> None:
        """Steps' starts and ends go to the run log, for its timeline (`orchestrator show`).

        Written beside the run, not awaited here: the graph's next step is scheduled only once
        this loop asks for the next event, and a commit per event held a 32-step fan-out's
        synthesis back ~30 ms. The rows are timing only (no money); `_steps_logged` waits for
        them before the run ends, and a failed write then fails the run as it did inline.
        """
        runs = self.storage.runs
        if isinstance(event, SubproblemStarted):
            write = runs.step_started(self.run_id, event.step, event.route, event.at)
        elif isinstance(event, SubproblemFinished):
            write = runs.step_finished(self.run_id, event.result, event.at)
        else:
            return
        # A task now, so the rows join the run log's next commit in the order of the events.
        row = asyncio.ensure_future(write)
        row.add_done_callback(_retrieved)  # a failure the run no longer waits for is not "lost"
        self._step_rows.append(row)

    async def _steps_logged(self) -> None:
        """Once every step row is in the run log; the first failed write's error, if any."""
        rows, self._step_rows = self._step_rows, []
        for row in rows:
            await row

    async def prepare(
        self, start: dict[str, Any] | None, decision: Decision | None
    ) -> dict[str, Any] | Command[Any] | None:
        prior = await self.graph.aget_state(self.config)
        graph_input = _graph_input(self.setup, self.run_id, prior, start, decision)
        self.tracker.observe(prior.values)
        # The trace starts here, where the latest checkpoint's metadata is at hand; what it
        # returns is kept in every checkpoint this attempt writes, for the attempts after it.
        keep = self.tracer.start(resumed=start is None, metadata=prior.metadata or {})
        if keep:
            self.config["metadata"] = {**self.config.get("metadata", {}), **keep}
        return graph_input

    async def events(
        self, graph_input: dict[str, Any] | Command[Any] | None, start: dict[str, Any] | None
    ) -> AsyncGenerator[Event, None]:
        spec, runs = self.setup.spec, self.storage.runs
        spent = sum(call.cost_usd for call in await runs.calls(self.run_id))
        budget = Budget(spec.limits.budget_usd, spent_usd=spent, parent=self.setup.batch_budget)
        models = await connect(
            spec,
            self.setup.models,
            pool=self.pool,
            budget=budget,
            ledger=self.ledger,
            cache=self.storage.cache,
            cache_all=self.setup.cache,
            cache_salt=self.setup.cache_salt,
            profiles=spec.used_profiles(self.setup.policy),
        )
        context = self._context(models, budget)
        context.prepare_policies()  # a bad router file is refused before anything is spent
        task = self.tracker.task or cast(dict[str, Any], start)["task"]
        await runs.start_run(self.run_id, spec.name, spec.source, task)
        log.info("run %s of %s started", self.run_id, spec.name)
        if start is not None and spec.graph is not None:
            announce = PlanReady(graph_steps(spec), None)
            self.tracker.see(announce)
            yield announce
        outcome = _Outcome()
        stream = cast(
            AsyncGenerator[tuple[str, Any], None],
            self.graph.astream(
                graph_input,
                self.config,
                context=context,
                stream_mode=["custom", "values"],
                # Each step starts once the previous step's checkpoint is written: a checkpoint
                # that cannot be written (a full disk) stops the run before it pays for more.
                durability="sync",
            ),
        )
        try:
            async with contextlib.aclosing(stream):
                async for mode, payload in stream:
                    if mode == "values":
                        self.tracker.observe(payload)
                        continue
                    self.tracker.see(payload)
                    self._log_step(payload)
                    yield payload
            await self._steps_logged()
        except BaseException as exc:
            await outcome.failed(exc, runs, self.run_id)  # re-raises all but a RunError
        yield RunFinished(await self._finish(outcome))

    def _context(self, models: dict[str, ChatModel], budget: Budget) -> RunContext:
        spec = self.setup.spec

        async def embedder(name: str) -> Embedder:
            return await embedder_for(spec, name, self.pool, ledger=self.ledger, budget=budget)

        return RunContext(
            spec,
            models,
            budget,
            self.ledger,
            self.setup.functions,
            self.setup.policy,
            embedder=embedder,
        )

    async def _finish(self, outcome: _Outcome) -> RunResult:
        pause = read_pause((await self.graph.aget_state(self.config)).interrupts)
        status, error, question = outcome.settle(pause, self.tracker.aborted)
        runs = self.storage.runs
        await runs.finish_run(self.run_id, status, error.message if error else None)
        log.info("run %s %s%s", self.run_id, status, f": {error.message}" if error else "")
        calls = tuple(await runs.calls(self.run_id))
        usage = Usage.from_calls(calls, self.setup.spec)
        return self.tracker.result(self.run_id, status, error, usage, question, calls)


async def inspect_run(setup: RunSetup, run_id: str) -> RunResult:
    """A run as it stands, without running anything: its status is settled the same way a
    run's own end is, from how it last ended (the run log) and what it waits for."""
    async with open_storage(setup.home) as storage:
        row = await storage.runs.get_run(run_id)
        snapshot = await setup.bound_graph(storage).aget_state(
            {"configurable": {"thread_id": run_id}}
        )
        calls = await storage.runs.calls(run_id)
    if row is None or not snapshot.values:
        raise UsageError(f"no run with id {run_id} in {describe_location(setup.home)}")
    tracker = RunTracker(setup.spec)
    tracker.observe(snapshot.values)
    outcome = _Outcome.from_log(row.status, row.error)
    status, error, question = outcome.settle(read_pause(snapshot.interrupts), tracker.aborted)
    usage = Usage.from_calls(calls, setup.spec)
    return tracker.result(run_id, status, error, usage, question, tuple(calls))


def _graph_input(
    setup: RunSetup,
    run_id: str,
    prior: Any,
    start: dict[str, Any] | None,
    decision: Decision | None,
) -> dict[str, Any] | Command[Any] | None:
    """What to stream the graph with, after checking the request against the checkpoint."""
    if start is not None:
        if prior.values:
            raise UsageError(
                f"run {run_id} already exists: resume it with `orchestrator resume {run_id}`, "
                "or choose another --run-id"
            )
        return start
    if not prior.values:
        raise UsageError(f"no run with id {run_id} in {describe_location(setup.home)}")
    pause = read_pause(prior.interrupts)
    if decision is None:
        if pause is not None:
            raise UsageError(waiting_message(pause, run_id))
        return None
    if isinstance(decision, Edit) and isinstance(pause, PlanReview):
        decision = Edit(validate_edit(decision.plan, setup.spec.limits.max_subproblems))
    return command_for(pause, decision, run_id)


def _retrieved(row: asyncio.Future[None]) -> None:
    if not row.cancelled():
        row.exception()


@dataclass
class _Outcome:
    """How the graph stream ended, as far as exceptions tell."""

    status: Status = "completed"
    error: ErrorInfo | None = None

    @classmethod
    def from_log(cls, status: str, error: str | None) -> _Outcome:
        """How an attempt ended, as the run log recorded it (a paused run: as completed, so the
        pause decides; a failed, stopped or killed one: unfinished)."""
        if status == "completed" or status.startswith("awaiting_"):
            return cls()
        if status == "budget_exceeded":
            return cls("budget_exceeded", ErrorInfo("BudgetExceededError", error or status))
        return cls("failed", ErrorInfo("Unfinished", error or f"run is {status}"))

    async def failed(self, exc: BaseException, runs: RunLog, run_id: str) -> None:
        """Note a failure; a run stopped by a signal (or by its reader) is recorded as
        interrupted at once, since the cancellation goes on from here."""
        if isinstance(exc, BudgetExceededError):
            self.status, self.error = "budget_exceeded", ErrorInfo(exc.type, exc.message)
        elif isinstance(exc, RunError):
            self.status, self.error = "failed", ErrorInfo(exc.type, exc.message)
        else:
            stopped = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit)
            status = "interrupted" if stopped else "failed"
            message = "stopped before it finished" if stopped else f"{type(exc).__name__}: {exc}"
            await asyncio.shield(runs.finish_run(run_id, status, message))
            raise exc

    def settle(
        self, pause: Pause | None, aborted: bool
    ) -> tuple[Status, ErrorInfo | None, str | None]:
        if self.status == "completed" and pause is not None:
            status, question = paused_status(pause)
            return status, None, question
        if aborted:  # the plan was rejected: nothing else ran
            return "failed", ErrorInfo("PlanRejected", ABORTED), None
        return self.status, self.error, None
