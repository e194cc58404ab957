"""OpenTelemetry spans of one run, built from what the run reports:

    invoke_agent WORKFLOW            the run (this attempt at it)
      node NAME                      each LangGraph node, timed by LangGraph's callbacks
        subproblem ID                each step, from SubproblemStarted / SubproblemFinished
          chat MODEL                 each billed call, from its CallRecord; failed attempts
                                     before it are `retry` events on it (from CallRetried)

Node spans start and end as LangGraph runs the nodes. A step's span is made when the step
finishes (its calls are children, made with it), so every span carries its own real times:
the events say when a step started and ended, the call records when each call was sent and
how long it took. Imported only when a run is traced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..events import (
    CallFinished,
    CallRetried,
    Event,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
)
from ..models.base import CallRecord
from ..models.retry import FailedAttempt
from ..spec import WorkflowSpec
from ..steps import Route, StepResult
from .attributes import (
    attempt_attributes,
    call_attributes,
    result_attributes,
    route_attributes,
    step_attributes,
)
from .options import TracerProviderLike

_PAUSES = {"GraphInterrupt", "NodeInterrupt", "ParentCommand"}  # a pause is no failure


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orchestrator")
    except PackageNotFoundError:
        return None


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


@dataclass
class _Node:
    name: str
    span: Span
    start_ns: int
    end_ns: int | None = None


@dataclass
class _Call:
    record: CallRecord
    attempts: list[FailedAttempt]


@dataclass
class _OpenStep:
    start_ns: int
    calls: list[_Call] = field(default_factory=list)


class OtelRun:
    """The spans of one run attempt; fed by `handler` (LangGraph's node runs) and `see`."""

    def __init__(self, provider: TracerProviderLike, spec: WorkflowSpec, run_id: str) -> None:
        self.tracer = provider.get_tracer("orchestrator", _version())
        self.spec, self.run_id = spec, run_id
        self.handler = _NodeCallbacks(self)
        self.run: Span | None = None
        self.nodes: dict[UUID, _Node] = {}
        self.steps: dict[str, _OpenStep] = {}
        self.waiting: dict[tuple[str, str | None, str], list[FailedAttempt]] = {}
        self.result: Any = None

    def start(self, resumed: bool, first: str | None) -> str | None:
        """Start the attempt's span, linked to the run's first attempt's (`first`, a W3C
        traceparent) when this one continues it; the traceparent of the first attempt's span
        (this one's, when it is the first traced) for the attempts after it."""
        earlier = _span_context(first) if first else None
        self.run = self.tracer.start_span(
            f"invoke_agent {self.spec.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.spec.name,
                "orchestrator.run_id": self.run_id,
                "orchestrator.workflow": self.spec.name,
                "orchestrator.resumed": resumed,
            },
            links=[Link(earlier, {"orchestrator.link": "first_attempt"})] if earlier else None,
        )
        if earlier is not None:
            return first
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, self._context(self.run))
        return carrier.get("traceparent")  # none when the span has no valid context (no-op)

    def _context(self, span: Span | None) -> Any:
        return trace.set_span_in_context(span) if span is not None else None

    # -- nodes, from LangGraph's callbacks ---------------------------------------------------

    def node_started(self, run_id: UUID, name: str, metadata: dict[str, Any]) -> None:
        now = time.time_ns()
        attributes = {"orchestrator.node": name}
        if isinstance(metadata.get("langgraph_step"), int):
            attributes["orchestrator.node.superstep"] = metadata["langgraph_step"]
        span = self.tracer.start_span(
            f"node {name}", self._context(self.run), attributes=attributes, start_time=now
        )
        self.nodes[run_id] = _Node(name, span, now)

    def node_ended(self, run_id: UUID, error: BaseException | None) -> None:
        node = self.nodes.get(run_id)
        if node is None or node.end_ns is not None:
            return
        if error is not None and type(error).__name__ in _PAUSES:
            node.span.set_attribute("orchestrator.node.paused", True)
        elif error is not None:
            node.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        node.end_ns = time.time_ns()
        node.span.end(end_time=node.end_ns)

    def _node_for(self, name: str | None, at_ns: int) -> Span | None:
        """The node a step or call belongs to: the latest node of its name (a custom graph's
        step is its node), else the latest node started by then, else the run."""
        started = [n for n in self.nodes.values() if n.start_ns <= at_ns]
        named = [n for n in started if n.name == name]
        chosen = named or [n for n in self.nodes.values() if n.name == name] or started
        return chosen[-1].span if chosen else self.run

    # -- steps and calls, from the run's events ----------------------------------------------

    def see(self, event: Event) -> None:
        if isinstance(event, SubproblemStarted):
            at = getattr(event, "at", None)
            self.steps[event.step.id] = _OpenStep(_ns(at) if at else time.time_ns())
        elif isinstance(event, CallRetried):
            attempt = event.attempt
            key = (attempt.profile, attempt.step, attempt.purpose)
            self.waiting.setdefault(key, []).append(attempt)
        elif isinstance(event, CallFinished):
            self._call(event.call)
        elif isinstance(event, SubproblemFinished):
            at = getattr(event, "at", None)
            self._step(event.result, _ns(at) if at else time.time_ns())
        elif isinstance(event, PlanReady) and self.run is not None:
            self.run.set_attribute("orchestrator.plan.steps", len(event.subproblems))
        elif isinstance(event, RunFinished):
            self.result = event.result

    def _call(self, record: CallRecord) -> None:
        attempts = self.waiting.pop((record.profile, record.step, record.purpose), [])
        call = _Call(record, attempts)
        step = self.steps.get(record.step) if record.step is not None else None
        if step is not None:
            step.calls.append(call)  # made with the step's span, when the step ends
            return
        hint = record.step or record.purpose
        self._call_span(call, self._node_for(hint, _ns(record.started_at)), None)

    def _call_span(self, call: _Call, parent: Span | None, route: Route | None) -> int:
        record = call.record
        start = _ns(record.started_at)
        if call.attempts:
            start = min(start, _ns(call.attempts[0].started_at))
        # A cached answer took no time now; its original latency stays an attribute.
        end = _ns(record.started_at) + (0 if record.cached else _ns(record.latency_s))
        attributes = call_attributes(self.spec, record, len(call.attempts))
        if route is not None:
            attributes.update(route_attributes(route))
        span = self.tracer.start_span(
            f"chat {record.model}",
            self._context(parent),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        for attempt in call.attempts:
            _retry_event(span, attempt)
        if record.finish_reason == "length":
            span.set_status(Status(StatusCode.ERROR, "cut off at the output token cap"))
        span.end(end_time=max(start, end))
        return max(start, end)

    def _step(self, result: StepResult, end_ns: int) -> None:
        open_step = self.steps.pop(result.id, None)
        start = open_step.start_ns if open_step else end_ns - _ns(result.latency_s)
        calls = open_step.calls if open_step else []
        if calls:
            start = min(start, *(_ns(c.record.started_at) for c in calls))
        span = self.tracer.start_span(
            f"subproblem {result.id}",
            self._context(self._node_for(result.id, start)),
            attributes=step_attributes(result),
            start_time=start,
        )
        for call in calls:
            end_ns = max(end_ns, self._call_span(call, span, result.route))
        for key in [key for key in self.waiting if key[1] == result.id]:
            for attempt in self.waiting.pop(key):  # attempts of calls that gave up (fallback)
                _retry_event(span, attempt)
        if result.status == "failed":
            span.set_status(Status(StatusCode.ERROR, result.error or "failed"))
        span.end(end_time=end_ns)

    def close(self) -> None:
        """End what is still open: the run ended, or was stopped (then its open steps are
        marked unfinished)."""
        now = time.time_ns()
        for step_id, open_step in list(self.steps.items()):
            span = self.tracer.start_span(
                f"subproblem {step_id}",
                self._context(self._node_for(step_id, open_step.start_ns)),
                attributes={"orchestrator.step.id": step_id, "orchestrator.step.status": "running"},
                start_time=open_step.start_ns,
            )
            for call in open_step.calls:
                self._call_span(call, span, None)
            span.set_status(Status(StatusCode.ERROR, "unfinished: the run stopped"))
            span.end(end_time=now)
        self.steps.clear()
        for node_id in list(self.nodes):
            self.node_ended(node_id, None)
        if self.run is None:
            return
        for attempts in self.waiting.values():
            for attempt in attempts:  # attempts of calls that gave up
                _retry_event(self.run, attempt)
        self._settle(self.run)
        self.run.end(end_time=now)
        self.run = None

    def _settle(self, span: Span) -> None:
        result = self.result
        if result is None:
            span.set_status(Status(StatusCode.ERROR, "stopped before it finished"))
            return
        span.set_attributes(result_attributes(result))
        if result.status in ("failed", "budget_exceeded"):
            message = result.error.message if result.error else result.status
            span.set_status(Status(StatusCode.ERROR, message))


def _span_context(traceparent: str) -> SpanContext | None:
    """The span a W3C traceparent names (None if it names none: malformed, or not valid)."""
    found = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    context = trace.get_current_span(found).get_span_context()
    return context if context.is_valid else None


def _retry_event(span: Span, attempt: FailedAttempt) -> None:
    span.add_event(
        "retry",
        attempt_attributes(attempt),
        timestamp=_ns(attempt.started_at + attempt.duration_s),
    )


class _NodeCallbacks(BaseCallbackHandler):
    """LangGraph's node runs, as they start and end: the graph's own run is the first this
    handler hears of (it is given to that graph only), its nodes are that run's children."""

    run_inline = True  # called in the node's own task, at the moment the node starts

    def __init__(self, run: OtelRun) -> None:
        self._run = run
        self._root: UUID | None = None

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._root is None:
            self._root = run_id
        elif parent_run_id == self._root and "langsmith:hidden" not in (tags or ()):
            name = kwargs.get("name") or (metadata or {}).get("langgraph_node") or "node"
            self._run.node_started(run_id, str(name), metadata or {})

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._run.node_ended(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._run.node_ended(run_id, error)
