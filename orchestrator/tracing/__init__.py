"""Traces of runs, for the observability stacks teams already run.

- OpenTelemetry: spans run → node → subproblem → model call, with GenAI attributes (`otel.py`),
  when `Workflow(tracing=...)`, `--otel`, or `OTEL_EXPORTER_OTLP_ENDPOINT` asks (`options.py`).
- LangSmith: with `LANGSMITH_TRACING=true`, LangChain's tracer records the graph's node runs,
  and each model call is added as an LLM run beneath them (`langsmith.py`).

`RunTracer` is the one consumer a run feeds: LangGraph callbacks for node boundaries, the
run's events for steps and calls, and the ledger's records (in the calling node's context)
for LangSmith. With no tracing on it does nothing, and nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..events import Event
from ..models.base import CallRecord
from ..models.ledger import Exchange
from ..spec import WorkflowSpec
from .langsmith import langsmith_enabled, report_call
from .options import (
    TracerProviderLike,
    TracingOption,
    check_option,
    flush_providers,
    otel_installed,
    resolve_provider,
)

if TYPE_CHECKING:
    from .otel import OtelRun

__all__ = [
    "RunTracer",
    "TracerProviderLike",
    "TracingOption",
    "check_option",
    "flush_traces",
    "otel_installed",
]

log = logging.getLogger(__name__)

FIRST_TRACE = "orchestrator_first_traceparent"
"""Checkpoint metadata: the W3C traceparent of the span of the run's first traced attempt."""


def flush_traces(timeout_s: float = 10.0) -> bool:
    """Send what tracing has buffered: the spans of the OTLP exporters orchestrator made, and
    LangSmith's queued runs. Python's exit hooks do it too; call this before a process ends
    without them (a serverless handler), or to see traces at once. True if all went in time."""
    sent = flush_providers(timeout_s)
    if "langsmith.run_trees" in sys.modules:  # else LangSmith never traced anything here
        from langchain_core.tracers.langchain import wait_for_all_tracers

        wait_for_all_tracers()
    return sent


class RunTracer:
    """Reports one run attempt to whichever tracing backends are on."""

    def __init__(self, spec: WorkflowSpec, run_id: str, option: TracingOption) -> None:
        self.spec, self.run_id = spec, run_id
        self.otel: OtelRun | None = None
        provider = resolve_provider(option)
        if provider is not None:
            from .otel import OtelRun

            self.otel = OtelRun(provider, spec, run_id)
        self.langsmith = langsmith_enabled()

    def config(self) -> dict[str, Any]:
        """What the run's LangGraph config needs: our node callbacks, a name for the trace."""
        if self.otel is None and not self.langsmith:
            return {}
        extra: dict[str, Any] = {
            "run_name": self.spec.name,
            "metadata": {"orchestrator_run_id": self.run_id},
        }
        if self.otel is not None:
            extra["callbacks"] = [self.otel.handler]
        return extra

    # A failure to trace is logged, never raised: it must not fail (or hide the end of) a run.

    def start(self, resumed: bool, metadata: Mapping[str, Any]) -> dict[str, str]:
        """Start the attempt's trace. `metadata` is the run's latest checkpoint's; what this
        returns goes into the metadata of the checkpoints the attempt writes, so that a later
        attempt links its trace to the first one (OpenTelemetry: a span link)."""
        first = metadata.get(FIRST_TRACE)
        first = first if isinstance(first, str) else None
        traceparent = first  # an attempt not traced keeps it for the ones after it
        if self.otel is not None:
            try:
                traceparent = self.otel.start(resumed, first)
            except Exception:
                log.exception("OpenTelemetry tracing failed to start")
        return {FIRST_TRACE: traceparent} if traceparent else {}

    def call(self, call: CallRecord, exchange: Exchange | None = None) -> None:
        """A billed call (and what it sent and got), heard in the context of the node that
        made it."""
        if self.langsmith:
            try:
                report_call(self.spec, call, exchange)
            except Exception:
                log.exception("could not report a call to LangSmith")

    def see(self, event: Event) -> None:
        if self.otel is not None:
            try:
                self.otel.see(event)
            except Exception:
                log.exception("OpenTelemetry tracing failed on %s", type(event).__name__)

    def close(self) -> None:
        if self.otel is not None:
            try:
                self.otel.close()
            except Exception:
                log.exception("OpenTelemetry tracing failed to end the run's spans")
