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

    def start(self, resumed: bool) -> None:
        if self.otel is not None:
            try:
                self.otel.start(resumed)
            except Exception:
                log.exception("OpenTelemetry tracing failed to start")

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
