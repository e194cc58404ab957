"""Following one run: its state and events become the `RunResult`, even when it failed."""

from __future__ import annotations

from typing import Any

from .events import PlanReady, SubproblemFinished
from .prompts import show
from .result import ErrorInfo, RunResult, Status, SubproblemResult, Usage
from .spec import WorkflowSpec


def waiting_for(interrupts: Any) -> tuple[Status, str | None]:
    """What a paused run waits for: a plan decision, or a human node's answer."""
    value = interrupts[0].value
    if isinstance(value, dict) and "node" in value:
        return "awaiting_input", str(value.get("message") or "")
    return "awaiting_approval", None


class RunTracker:
    """Follows a run's state and events, so a failed run still reports what finished."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self.state: dict[str, Any] = {}
        self.plan: PlanReady | None = None
        self.finished: dict[str, SubproblemFinished] = {}
        self.question: str | None = None

    def see(self, event: Any) -> None:
        if isinstance(event, PlanReady):
            self.plan = event
        elif isinstance(event, SubproblemFinished):
            self.finished[event.id] = event

    def result(
        self, run_id: str, status: Status, error: ErrorInfo | None, usage: Usage
    ) -> RunResult:
        graph = self.spec.graph
        output = self.state.get("output", "")
        if graph is not None:
            output = show(self.state.get(graph.answer_key))
        return RunResult(
            run_id=run_id,
            status=status,
            output=output if status == "completed" else "",
            question=self.question,
            subproblems=tuple(self._nodes() if graph is not None else self._subproblems()),
            usage=usage,
            error=error,
            plan_note=self.state.get("plan_note") or (self.plan.note if self.plan else None),
        )

    def _nodes(self) -> list[SubproblemResult]:
        """A custom graph's nodes, as the `subproblems` of the result."""
        graph = self.spec.graph
        assert graph is not None
        out = []
        for name, node in graph.nodes.items():
            if name in graph.mapped:
                continue
            value = self.state.get(graph.output_key(name))
            default = ("", "")
            if node.calls_model:
                profile = node.profile or self.spec.profile_for(node.role)[0]
                default = (profile, self.spec.models[profile].model)
            event = self.finished.get(name)
            ran = any(t["node"] == name for t in self.state.get("trace") or [])
            status = event.status if event else ("done" if ran else "pending")
            if ran and status == "failed":
                status = "done"  # failed once, then ran again
            out.append(
                SubproblemResult(
                    id=name,
                    kind=node.type,
                    profile=event.profile if event else default[0],
                    model=event.model if event else default[1],
                    status=status,
                    output=show(value) if ran else "",
                    task=node.prompt or node.type,
                )
            )
        return out

    def _subproblems(self) -> list[SubproblemResult]:
        results: dict[str, Any] = self.state.get("results") or {}
        planned = self.state.get("plan") or (
            [
                {"id": p.id, "kind": p.kind, "task": p.task, "depends_on": list(p.depends_on)}
                for p in self.plan.subproblems
            ]
            if self.plan
            else []
        )
        out = []
        for item in planned:
            sid = item["id"]
            common = {
                "id": sid,
                "kind": item["kind"],
                "task": item["task"],
                "depends_on": tuple(item["depends_on"]),
            }
            if sid in results:
                r = results[sid]
                out.append(
                    SubproblemResult(
                        **common,
                        profile=r["profile"],
                        model=r["model"],
                        status=r["status"],
                        output=r["output"],
                        trace=r.get("trace"),
                    )
                )
            elif sid in self.finished:
                f = self.finished[sid]
                out.append(
                    SubproblemResult(
                        **common, profile=f.profile, model=f.model, status=f.status, output=f.output
                    )
                )
            else:
                profile, spec = self.spec.profile_for(item["kind"])
                out.append(
                    SubproblemResult(
                        **common, profile=profile, model=spec.model, status="pending", output=""
                    )
                )
        return out
