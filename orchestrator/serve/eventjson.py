"""The typed events as JSON, for `GET /runs/{id}/events`: one object per event, `type` first.

    plan_ready           subproblems (the --json shape, status pending), note
    subproblem_started   step (plan format), route
    subproblem_finished  result (the --json shape plus error, cost_usd, latency_s, usage)
    call_finished        call (profile, model, purpose, step, usage, cost_usd, ...)
    answer_token         text
    answer_restarted     (none: the answer so far is withdrawn and streams again)
    run_finished         result (exactly --json, plus question and plan_note)

Event types added later are sent as their snake_case name with their fields (`call_retried`:
`attempt`). Two more come from the server, not the run: `run_cancelled` (the run was stopped:
`status` cancelled, or interrupted when the server shut down) and `run_error` (`error`: the
run could not start or continue, in OpenAI's error shape).
"""

from __future__ import annotations

import re
from dataclasses import asdict, is_dataclass
from typing import Any

from ..events import (
    AnswerRestarted,
    AnswerToken,
    CallFinished,
    Event,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
)
from ..models.base import TokenUsage
from ..result import RunResult
from ..steps import StepResult


def usage_json(usage: TokenUsage) -> dict[str, Any]:
    return asdict(usage)


def step_json(result: StepResult) -> dict[str, Any]:
    return {
        **result.to_dict(),
        "error": result.error,
        "cost_usd": round(result.cost_usd, 8),
        "latency_s": round(result.latency_s, 4),
        "usage": usage_json(result.usage),
    }


def result_json(result: RunResult) -> dict[str, Any]:
    return {**result.to_dict(), "question": result.question, "plan_note": result.plan_note}


def event_json(event: Event) -> dict[str, Any]:
    """One event as a JSON-able dict."""
    if isinstance(event, AnswerToken):
        return {"type": "answer_token", "text": event.text}
    if isinstance(event, CallFinished):
        return {"type": "call_finished", "call": asdict(event.call)}
    if isinstance(event, SubproblemStarted):
        return {
            "type": "subproblem_started",
            "step": event.step.to_dict(),
            "route": event.route.to_dict(),
        }
    if isinstance(event, SubproblemFinished):
        return {"type": "subproblem_finished", "result": step_json(event.result)}
    if isinstance(event, PlanReady):
        return {
            "type": "plan_ready",
            "subproblems": [s.to_dict() for s in event.subproblems],
            "note": event.note,
        }
    if isinstance(event, AnswerRestarted):
        return {"type": "answer_restarted"}
    if isinstance(event, RunFinished):
        return {"type": "run_finished", "result": result_json(event.result)}
    return _generic(event)


def _generic(event: object) -> dict[str, Any]:
    """An event type newer than this table: its snake_case name and its fields."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    fields = asdict(event) if is_dataclass(event) and not isinstance(event, type) else {}
    return {"type": name, **fields}
