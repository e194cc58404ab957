"""Typed events from `Workflow.astream`, in the order a run produces them.

`PlanReady` → (`SubproblemStarted` → `SubproblemFinished`)* → `AnswerToken`* → `RunFinished`.
`CallFinished` accompanies every billed model call, whichever node made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models.base import CallRecord, TokenUsage

if TYPE_CHECKING:
    from .result import RunResult


@dataclass(frozen=True)
class PlannedItem:
    id: str
    kind: str
    task: str
    depends_on: tuple[str, ...]
    profile: str
    model: str


@dataclass(frozen=True)
class PlanReady:
    """The plan is valid and about to run. `note` says if it was repaired or replaced."""

    subproblems: tuple[PlannedItem, ...]
    note: str | None


@dataclass(frozen=True)
class SubproblemStarted:
    id: str
    kind: str
    profile: str
    model: str


@dataclass(frozen=True)
class SubproblemFinished:
    """A subproblem ended; `status` is `done` or `failed` (then `error` says why)."""

    id: str
    kind: str
    profile: str
    model: str
    status: str
    output: str
    usage: TokenUsage
    cost_usd: float
    latency_s: float
    error: str | None = None


@dataclass(frozen=True)
class CallFinished:
    """One billed model call (plan, solve or synthesize), failed ones included."""

    call: CallRecord


@dataclass(frozen=True)
class AnswerToken:
    """A piece of the final answer, as the synthesizer streams it."""

    text: str


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


Event = (
    PlanReady | SubproblemStarted | SubproblemFinished | CallFinished | AnswerToken | RunFinished
)
