"""The storage interface: where a run's checkpoints, its run log and the response cache live.

One `Storage` is opened from one location (a directory for SQLite, or a PostgreSQL URL) and
holds all three, so a deployment points everything at one place. Implementations never block
the event loop: every method that touches the database is a coroutine.

The run log is the ledger behind a run's cost: each billed call is written before the step that
made it goes on, so a run that failed, was killed or was resumed still reports everything it
paid for. No API key is ever written to storage.

A run id is leased to one process at a time (`acquire_lease`): two `resume` processes on one
run cannot both execute it, and a lease whose holder died (or stopped renewing it) can be taken.

The response cache maps a request's key (a sha256 of the canonical request, see
orchestrator/models/cache.py) to a complete answer, so an identical request can be answered
without calling the endpoint again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver

from ..models.base import CallRecord, TokenUsage
from ..models.retry import FailedAttempt
from ..steps import Route, Step, StepResult

RUN_STATUSES = (
    "running",
    "completed",
    "failed",
    "budget_exceeded",
    "awaiting_approval",
    "awaiting_input",
    "interrupted",
)


@dataclass(frozen=True)
class RunRow:
    """One run as the run log has it. `cost_usd` sums every billed call of every attempt.

    `status` is `interrupted` for a run marked running whose process is gone (killed), or that
    was stopped by a signal.
    """

    run_id: str
    workflow: str
    workflow_path: str | None
    task: str
    status: str
    error: str | None
    cost_usd: float
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class StepSpan:
    """One run of a step, as the run log has it: when it started and ended, and how.

    A step run again (its run was resumed after it failed) has a span per run.
    """

    step: Step
    profile: str
    model: str
    started_at: float
    finished_at: float | None
    """None: it never ended (still running, or its process was killed)."""
    status: str
    """running | done | failed."""
    cost_usd: float
    policy: str
    escalations: int
    """How many times the step moved to a stronger role or effort."""
    error: str | None = None


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a run's lease: their owner token, process id and host, and until when."""

    owner: str
    pid: int
    host: str
    expires_at: float


class RunLog(Protocol):
    """Runs and every billed call, per run."""

    async def start_run(
        self, run_id: str, workflow: str, workflow_path: str | None, task: str
    ) -> None:
        """Record that the run is (again) running in this process."""

    async def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        """Record how this attempt at the run ended."""

    async def add_call(self, run_id: str, call: CallRecord) -> None:
        """Append a billed call; returns once it is durably written."""

    async def calls(self, run_id: str) -> list[CallRecord]:
        """Every billed call of the run, in the order they were written."""

    async def add_attempt(self, run_id: str, attempt: FailedAttempt) -> None:
        """Append a failed (unbilled) attempt; returns once it is durably written."""

    async def attempts(self, run_id: str) -> list[FailedAttempt]:
        """Every failed attempt of the run, in the order they were written."""

    async def step_started(self, run_id: str, step: Step, route: Route, at: float) -> None:
        """Record that `step` started at `at` (epoch seconds) on `route`."""

    async def step_finished(self, run_id: str, result: StepResult, at: float) -> None:
        """Record that a step ended at `at`, as `result` says."""

    async def steps(self, run_id: str) -> list[StepSpan]:
        """Every run of every step, in the order they started."""

    async def get_run(self, run_id: str) -> RunRow | None: ...

    async def recent_runs(self, limit: int) -> list[RunRow]:
        """The most recently created runs first."""

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> LeaseHolder | None:
        """Take the run's lease for `ttl_s` seconds; None if taken, else who holds it."""

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Extend a lease we hold; False if it was lost."""

    async def release_lease(self, run_id: str, owner: str) -> None: ...

    async def count_cached_calls(self) -> int:
        """Calls answered from the response cache, over every run in the log."""


@dataclass(frozen=True)
class CachedAnswer:
    """A complete answer as the response cache keeps it: what replaying the call needs.

    `usage` and `latency_s` are the original call's, so a hit is recorded with what the
    answer really took (at cost 0).
    """

    content: str
    trace: str | None
    finish_reason: str
    usage: TokenUsage
    latency_s: float


@dataclass(frozen=True)
class CacheStats:
    """What the response cache holds. `oldest`/`newest`: when entries were stored (epoch s)."""

    location: str
    entries: int
    size_bytes: int
    oldest: float | None
    newest: float | None


class ResponseCache(Protocol):
    """Complete answers by request key (a sha256 hex digest, never anything secret)."""

    async def check(self) -> None:
        """Open the cache if needed; StorageError if it cannot be used. A run that caches
        calls this before its first model call, so a broken cache costs nothing."""

    async def get(self, key: str) -> CachedAnswer | None: ...

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store `answer` under `key`, written behind: it returns at once, a later `get` in
        this process sees it, and closing the storage waits for the write.

        Not a coroutine on purpose: the answer was billed, and the ledger records it only
        once `put` returns, so a put must never wait (a cancellation there would lose the
        record) nor raise (a failed write is reported and the answer simply not cached).
        """

    async def stats(self) -> CacheStats: ...

    async def clear(self) -> int:
        """Remove every entry; how many there were."""


class Storage(Protocol):
    """Checkpointer, run log and response cache, opened together from one location."""

    location: str
    """Where it is, for messages (a directory, or a URL with any password removed)."""
    checkpointer: BaseCheckpointSaver[str]
    runs: RunLog
    cache: ResponseCache
