"""Runs in the background of the server: started, followed, resumed and cancelled.

Every run the server executes, whether a chat completion's or the runs API's, goes through
`RunManager`: it holds the `--max-concurrent-runs` slots, drives the SDK's event stream
(`Workflow.astream` / `astream_resume`, never a run of its own) in a task, and keeps each run's
events in a buffer that any number of readers follow, from any point (`Last-Event-ID`).

What outlives the process is the SDK's: checkpoints and the run log. A run this server was
running when it died shows as `interrupted` (the run log sees its process is gone), and is
continued from its checkpoint, with nothing finished paid for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from ..errors import OrchestratorError
from ..events import CallFinished, Event, RunFinished
from ..result import RunResult
from ..resume import Decision
from ..run import new_run_id
from ..storage import open_storage
from .config import ServeConfig, Served
from .errors import SERVER_ERROR, ApiError, from_orchestrator
from .metrics import Metrics

log = logging.getLogger("orchestrator.serve")

CANCELLED = "cancelled on request (DELETE /runs/{id}, or its client went away)"
"""The run log's error for a run the server cancelled: it reads back as status `cancelled`,
and `--resume-interrupted` leaves it alone."""
SHUT_DOWN = "stopped when the server shut down"
KEEP_FINISHED = 256  # finished runs whose events stay in memory (older: their final state)
CANCEL_WAIT_S = 10.0


@dataclass(frozen=True)
class Note:
    """An event from the server rather than the run: `run_cancelled` or `run_error`."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


Frame = Event | Note


class RunEntry:
    """One run as this process knows it: its events so far and the attempt running it."""

    def __init__(self, run_id: str, served: Served) -> None:
        self.run_id, self.served = run_id, served
        self.frames: list[Frame] = []
        self.running = False
        self.started = False
        """The attempt has produced an event: it holds its lease and its run-log row is written."""
        self.cancel_requested = False
        self.result: RunResult | None = None
        self.error: ApiError | None = None
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def append(self, frame: Frame) -> None:
        self.frames.append(frame)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def begin(self) -> None:
        self.running, self.started, self.cancel_requested = True, False, False
        self.result, self.error = None, None

    def end(self) -> None:
        self.running = False
        self._notify()

    async def follow(self, after: int = 0) -> AsyncIterator[tuple[int, Frame]]:
        """(sequence number, frame) from the one after `after`, until the attempt ends."""
        seen = max(0, after)
        async for batch in self.batches(seen):
            for frame in batch:
                seen += 1
                yield seen, frame

    async def batches(self, after: int = 0) -> AsyncIterator[list[Frame]]:
        """The frames after `after` in batches: all that are there, then all that came while
        the reader waited, until the attempt ends (one send per batch, not per token)."""
        seen = max(0, after)
        while True:
            if seen < len(self.frames):
                batch = self.frames[seen:]
                seen += len(batch)
                yield batch
                continue
            if not self.running:
                return
            await self._changed.wait()

    async def finished(self) -> None:
        """Wait until the current attempt has ended (its task included)."""
        if self.task is not None:
            await asyncio.shield(self.task)


class RunManager:
    """The runs this process runs, and the slots they take."""

    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.config, self.metrics = config, metrics
        self.boot = secrets.token_hex(3)
        """Marks this process's event ids: an id from another process's buffer is not ours."""
        self.entries: OrderedDict[str, RunEntry] = OrderedDict()
        self.active = 0

    def entry(self, run_id: str) -> RunEntry | None:
        return self.entries.get(run_id)

    def _reserve(self) -> None:
        if self.active >= self.config.max_concurrent_runs:
            retry = str(self.config.retry_after_s)
            raise ApiError(
                429,
                f"{self.active} runs are running, the most this server runs at once; "
                f"try again in {retry} s",
                code="too_many_runs",
                headers={"Retry-After": retry},
            )

    def start(self, served: Served, task: str, *, approve_plan: bool = False) -> RunEntry:
        """Start a new run in the background; 429 when every slot is taken."""
        self._reserve()
        run_id = new_run_id()
        while run_id in self.entries:
            run_id = new_run_id()
        entry = RunEntry(run_id, served)
        events = served.workflow.astream(task, run_id=run_id, approve_plan=approve_plan)
        self._launch(entry, events)
        return entry

    def resume(self, served: Served, run_id: str, decision: Decision | None) -> RunEntry:
        """Continue a run in the background (checked by the caller against its state)."""
        entry = self.entries.get(run_id) or RunEntry(run_id, served)
        if entry.running:
            raise ApiError(409, f"run {run_id} is running already", code="run_busy")
        self._reserve()
        self._launch(entry, served.workflow.astream_resume(run_id, decision))
        return entry

    def _launch(self, entry: RunEntry, events: AsyncIterator[Event]) -> None:
        entry.begin()
        self.entries[entry.run_id] = entry
        self.entries.move_to_end(entry.run_id)
        self.active += 1
        self.metrics.run_started(entry.served.name)
        entry.task = asyncio.create_task(self._drive(entry, events), name=entry.run_id)

    async def _drive(self, entry: RunEntry, events: AsyncIterator[Event]) -> None:
        started, status = time.monotonic(), "failed"
        try:
            async with contextlib.aclosing(cast(AsyncGenerator[Event, None], events)) as stream:
                async for event in stream:
                    if not entry.started:
                        entry.started = True
                        if entry.cancel_requested:  # asked while it started: safe from here
                            cast(asyncio.Task[None], asyncio.current_task()).cancel()
                    if isinstance(event, CallFinished):
                        self.metrics.call(event.call)
                    elif isinstance(event, RunFinished):
                        entry.result, status = event.result, event.result.status
                    entry.append(event)
        except asyncio.CancelledError:
            status = "cancelled" if entry.cancel_requested else "interrupted"
            await asyncio.shield(self._record_stop(entry))
            entry.append(Note("run_cancelled", {"status": status}))
        except OrchestratorError as exc:
            entry.error = from_orchestrator(exc)
            entry.append(Note("run_error", entry.error.body()))
        except Exception as exc:  # a bug: the message may say anything, so log it, show less
            log.exception("run %s failed unexpectedly", entry.run_id)
            entry.error = ApiError(500, f"internal error ({type(exc).__name__})", type=SERVER_ERROR)
            entry.append(Note("run_error", entry.error.body()))
        finally:
            self.active -= 1
            self.metrics.run_ended(entry.served.name, status, time.monotonic() - started)
            entry.end()
            self._retire()

    async def _record_stop(self, entry: RunEntry) -> None:
        """Say in the run log why it stopped: cancelled on request, or the server went down."""
        note = CANCELLED if entry.cancel_requested else SHUT_DOWN
        try:
            async with open_storage(entry.served.workflow.home) as storage:
                await storage.runs.finish_run(entry.run_id, "interrupted", note)
        except Exception as exc:  # the run log is the SDK's: say so, and go on serving
            log.warning(
                "could not record that run %s stopped (%s)", entry.run_id, type(exc).__name__
            )

    def _retire(self) -> None:
        # Every running attempt has its entry here, so the rest are the finished ones. The
        # oldest come first: the walk stops at the last one to drop, not at the end of all.
        excess = len(self.entries) - self.active - KEEP_FINISHED
        drop: list[str] = []
        for entry in self.entries.values():
            if len(drop) >= excess:
                break
            if not entry.running:
                drop.append(entry.run_id)
        for run_id in drop:
            del self.entries[run_id]

    def cancel_nowait(self, entry: RunEntry) -> None:
        """Ask the run's attempt to stop (it records itself interrupted as it goes).

        An attempt that has not produced its first event yet is stopped when it does: while it
        takes its lease and writes its run-log row, a cancellation could leave the shared
        run-log connection inside a transaction. Its first call is paid either way.
        """
        if entry.task is not None and entry.running:
            entry.cancel_requested = True
            if entry.started:
                entry.task.cancel()

    async def cancel(self, entry: RunEntry) -> None:
        """Stop the run's attempt and wait (a little) until its checkpoint and log agree; an
        attempt still starting stops later, without anyone waiting for it."""
        if entry.task is None or not entry.running:
            return
        self.cancel_nowait(entry)
        if not entry.started:
            return
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(entry.task), CANCEL_WAIT_S)

    async def shutdown(self) -> None:
        """Stop every run (recorded interrupted, so `--resume-interrupted` continues it)."""
        tasks = [e.task for e in self.entries.values() if e.running and e.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)
