"""Where a run's OpenTelemetry spans go: the `tracing` option, read without importing the SDK.

`None` (the default) traces only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and the `otel` extra is installed; `False` never;
`True` always (the application's global provider if it set one, else OTLP/HTTP as the
environment says); a string is an OTLP/HTTP endpoint; anything with `get_tracer` is used as
the tracer provider (a test's, with an in-memory exporter).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, Protocol

from ..errors import UsageError

EXTRA_MISSING = (
    "OpenTelemetry tracing needs the otel extra: pip install 'orchestrator[otel]' "
    "(or leave out --otel and tracing=)"
)


class TracerProviderLike(Protocol):
    """An OpenTelemetry `TracerProvider`: the SDK's, or any object with its `get_tracer`."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> Any: ...


TracingOption = bool | str | TracerProviderLike | None
"""`Workflow(tracing=...)`: None (from the environment), False, True, an OTLP/HTTP endpoint,
or a tracer provider."""

_providers: dict[str, Any] = {}  # one exporting provider per endpoint, for the process
_lock = threading.Lock()


def otel_installed() -> bool:
    """The `otel` extra is importable (checked without importing it)."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
        )
    except ModuleNotFoundError:
        return False


def check_option(option: TracingOption) -> TracingOption:
    """Refuse a tracing request that cannot be met, before a run starts (an endpoint that is no
    URL, or the extra missing)."""
    if isinstance(option, str) and option and not option.startswith(("http://", "https://")):
        raise UsageError(
            f"the OpenTelemetry endpoint {option[:60]!r} is not an http(s) URL "
            "(e.g. --otel http://localhost:4318)"
        )
    if (option is True or isinstance(option, str)) and not otel_installed():
        raise UsageError(EXTRA_MISSING)
    return option


def _env_endpoint() -> bool:
    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def resolve_provider(option: TracingOption) -> TracerProviderLike | None:
    """The tracer provider a run reports to, or None when it is not traced."""
    if option is False or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if option is None and os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return None
    if option is None:
        if not (_env_endpoint() and otel_installed()):
            return None  # nothing of OpenTelemetry is imported
        option = True
    if option is True or isinstance(option, str):
        check_option(option)
        if isinstance(option, str) and option:
            return _exporting_provider(option)
        return _global_provider() or _exporting_provider(None)
    return None if isinstance(option, bool) else option


def _global_provider() -> TracerProviderLike | None:
    """The provider the application installed, if it installed one."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def traces_url(endpoint: str) -> str:
    """An OTLP/HTTP base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is) as its traces URL."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def _exporting_provider(endpoint: str | None) -> TracerProviderLike:
    """A provider batching spans to OTLP/HTTP (`endpoint`, else the environment's), made once
    per process; the SDK flushes it when the process exits."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    key = endpoint or ""
    with _lock:
        if key not in _providers:
            # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win when set.
            named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
                "OTEL_RESOURCE_ATTRIBUTES", ""
            )
            resource = Resource.create({} if named else {"service.name": "orchestrator"})
            provider = TracerProvider(resource=resource)
            url = traces_url(endpoint) if endpoint else None
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
            _providers[key] = provider
        found: TracerProviderLike = _providers[key]
        return found


def flush_providers(timeout_s: float) -> bool:
    """Send every span the providers made here have buffered; True if all went in time."""
    with _lock:
        providers = list(_providers.values())
    return all(p.force_flush(int(timeout_s * 1000)) for p in providers)
