"""Prometheus metrics for `/metrics`, on a registry of the app's own (not the process-global
one), so two apps in one process (tests, an embedding application) never mix their counts.

    orchestrator_runs_active{workflow}                      runs executing now
    orchestrator_runs_total{workflow,status}                attempts ended, by how they ended
    orchestrator_model_calls_total{profile,model}           billed calls
    orchestrator_tokens_total{profile,kind}                 input, cached_input, output, reasoning
    orchestrator_cost_usd_total{profile}                    what those calls cost
    orchestrator_model_call_seconds{profile}                a call's latency (histogram)
    orchestrator_run_seconds{workflow}                      an attempt's wall time (histogram)
    orchestrator_http_request_seconds{route,method,status}  the server's own latency (histogram)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from starlette.requests import Request
from starlette.responses import Response

from ..models.base import CallRecord

# Model calls take from a fraction of a second (cheap model) to minutes (a reasoning model).
CALL_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120)


class Metrics:
    """The server's instruments, on one registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.runs_active = Gauge(
            "orchestrator_runs_active", "Runs executing now", ["workflow"], registry=registry
        )
        self.runs = Counter(
            "orchestrator_runs", "Run attempts ended, by status", ["workflow", "status"],
            registry=registry,
        )  # fmt: skip
        self.calls = Counter(
            "orchestrator_model_calls", "Billed model calls", ["profile", "model"],
            registry=registry,
        )  # fmt: skip
        self.tokens = Counter(
            "orchestrator_tokens", "Tokens of billed calls", ["profile", "kind"], registry=registry
        )
        self.cost = Counter(
            "orchestrator_cost_usd", "Cost of billed calls (USD)", ["profile"], registry=registry
        )
        self.call_seconds = Histogram(
            "orchestrator_model_call_seconds", "Latency of a model call", ["profile"],
            buckets=CALL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "orchestrator_run_seconds", "Wall time of a run attempt", ["workflow"],
            buckets=RUN_BUCKETS, registry=registry,
        )  # fmt: skip
        self.http_seconds = Histogram(
            "orchestrator_http_request_seconds", "Time to answer a request (to its last byte)",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=registry,
        )  # fmt: skip
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def of(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once: prometheus_client checks the labels and
        takes a lock on every `labels()` call (~3 µs; a request made 26). Every label here has
        few values (profiles, models, workflows, statuses, routes), so the cache stays small."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def call(self, call: CallRecord) -> None:
        u, profile = call.usage, call.profile
        self.of(self.calls, profile, call.model).inc()
        for kind, value in (
            ("input", u.input_tokens),
            ("cached_input", u.cached_input_tokens),
            ("output", u.output_tokens),
            ("reasoning", u.reasoning_tokens),
        ):
            self.of(self.tokens, profile, kind).inc(value)
        self.of(self.cost, profile).inc(call.cost_usd)
        self.of(self.call_seconds, profile).observe(call.latency_s)

    def run_started(self, workflow: str) -> None:
        self.of(self.runs_active, workflow).inc()

    def run_ended(self, workflow: str, status: str, seconds: float) -> None:
        self.of(self.runs_active, workflow).dec()
        self.of(self.runs, workflow, status).inc()
        self.of(self.run_seconds, workflow).observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
