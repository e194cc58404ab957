"""Typed events from `Workflow.astream`, in the order a run produces them:

    PlanReady → (SubproblemStarted → SubproblemFinished)* → AnswerToken* → RunFinished

`CallFinished` accompanies every billed model call, whichever step made it; `CallRetried` every
failed attempt that is tried again, as it fails (before the wait). `AnswerRestarted`
appears between answer tokens only when a retried stream could not continue the text already
sent: the answer so far is withdrawn and streams again from its start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models.base import CallRecord
from .models.retry import FailedAttempt
from .steps import Route, Step, StepResult

if TYPE_CHECKING:
    from .result import RunResult


@dataclass(frozen=True)
class PlanReady:
    """The plan is valid and about to run (a custom graph announces its nodes the same way)."""

    subproblems: tuple[StepResult, ...]
    """Every step, status `pending`, with the route it is planned to take."""
    note: str | None
    """Set when the planner's plan was repaired or replaced, saying how."""


@dataclass(frozen=True)
class SubproblemStarted:
    """A step is about to call its model (or, for a graph node without one, to run)."""

    step: Step
    """What is being solved: id, kind, task, dependencies."""
    route: Route
    """The profile and model that answer it, and why."""
    at: float = field(default_factory=time.time, compare=False)
    """Wall-clock time (`time.time()`) it started."""


@dataclass(frozen=True)
class SubproblemFinished:
    """A step ended."""

    result: StepResult
    """Its status (`done` or `failed`, then `error` says why), answer, trace, usage and cost."""
    at: float = field(default_factory=time.time, compare=False)
    """Wall-clock time (`time.time()`) it ended."""


@dataclass(frozen=True)
class CallFinished:
    """One billed model call (plan, solve, synthesize or a graph node), failed ones included."""

    call: CallRecord
    """Profile, model, purpose, the step it was made for, tokens, cost, latency, start time."""


@dataclass(frozen=True)
class CallRetried:
    """A model call's attempt failed and the call will try again after a wait (never billed).

    Sent as the attempt fails, before the wait, so a view can show the call as waiting. The
    last failed attempt of a call that gives up is not an event (the call's error is), but it
    is in the run log with the others.
    """

    attempt: FailedAttempt
    """`profile`, `model`, `purpose`, `step`; `number` of `attempts`; `reason` (status,
    timeout, connection, malformed, error) with `detail` and `status`; `started_at`,
    `duration_s`; `wait_s`, the seconds before the next attempt (always set here)."""


@dataclass(frozen=True)
class AnswerToken:
    """A piece of the final answer's visible text, as the synthesizer streams it."""

    text: str
    """The next characters of the answer (never reasoning)."""


@dataclass(frozen=True)
class AnswerRestarted:
    """The answer streamed so far is withdrawn; the next `AnswerToken`s start it again."""


@dataclass(frozen=True)
class RunFinished:
    """The run stopped: completed, failed, over budget, or paused for a decision."""

    result: RunResult
    """The run's outcome, exactly what `--json` prints (plus traces and notes)."""


Event = (
    PlanReady
    | SubproblemStarted
    | SubproblemFinished
    | CallFinished
    | CallRetried
    | AnswerToken
    | AnswerRestarted
    | RunFinished
)
