"""Following one run: its state and events become the `RunResult`, even when it failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .events import PlanReady, SubproblemFinished
from .graph.custom import STEPS_KEY
from .graph.nodes import graph_steps
from .graph.plan import planned
from .models.base import CallRecord
from .prompts import show
from .result import ErrorInfo, RunResult, Status, Usage
from .spec import WorkflowSpec
from .steps import Step, StepResult


class RunTracker:
    """Follows a run's checkpointed state and its events, so a run that failed, was paused or
    is only inspected still reports its plan, what finished and what is pending."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self._spec = spec
        self._state: dict[str, Any] = {}
        self._announced: PlanReady | None = None
        self._finished: dict[str, StepResult] = {}

    def observe(self, state: Mapping[str, Any]) -> None:
        """The run's latest state (LangGraph's `values`)."""
        self._state = dict(state)

    def see(self, event: object) -> None:
        if isinstance(event, PlanReady) and self._announced is None:
            self._announced = event  # the run's own plan; a plan node's inner plans come later
        elif isinstance(event, SubproblemFinished):
            self._finished[event.result.id] = event.result

    @property
    def task(self) -> str | None:
        return self._state.get("task")

    @property
    def aborted(self) -> bool:
        return bool(self._state.get("aborted"))

    def steps(self) -> tuple[StepResult, ...]:
        """Every step in plan order: as it finished (this attempt's events first, then the
        checkpoint), else pending on its planned route."""
        stored: dict[str, Any] = self._state.get(STEPS_KEY) or self._state.get("results") or {}
        out = []
        for pending in self._planned():
            sid = pending.id
            if sid in self._finished:
                out.append(self._finished[sid])
            elif sid in stored:
                out.append(StepResult.from_state(stored[sid], pending.step))
            else:
                out.append(pending)
        return tuple(out)

    def _planned(self) -> tuple[StepResult, ...]:
        if self._spec.graph is not None:
            return graph_steps(self._spec)
        if "plan" not in self._state:
            return self._announced.subproblems if self._announced else ()
        return planned(self._spec, (Step.from_dict(d) for d in self._state["plan"]))

    def output(self) -> str:
        graph = self._spec.graph
        if graph is not None:
            return show(self._state.get(graph.answer_key))
        return str(self._state.get("output") or "")

    def result(
        self,
        run_id: str,
        status: Status,
        error: ErrorInfo | None,
        usage: Usage,
        question: str | None = None,
        calls: tuple[CallRecord, ...] = (),
    ) -> RunResult:
        note = self._state.get("plan_note") or (self._announced.note if self._announced else None)
        return RunResult(
            run_id=run_id,
            status=status,
            output=self.output() if status == "completed" else "",
            subproblems=self.steps(),
            usage=usage,
            error=error,
            plan_note=note,
            question=question,
            calls=calls,
        )
