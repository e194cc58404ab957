"""Span attributes: OpenTelemetry's GenAI semantic conventions where one fits (`gen_ai.*`),
`orchestrator.*` for what they do not cover (reasoning tokens, cost, routes, cache, retries)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ..models.base import CallRecord
from ..models.retry import FailedAttempt
from ..result import RunResult
from ..spec import ModelProfile, WorkflowSpec
from ..steps import Route, StepResult

Attributes = dict[str, Any]


def provider_name(profile: ModelProfile | None) -> str:
    """`gen_ai.provider.name`: the API a profile speaks (a LangChain model: its package's)."""
    if profile is None or profile.provider == "openai":
        return "openai"  # any OpenAI-compatible endpoint speaks OpenAI's API
    if profile.provider == "local":
        return "llama.cpp"
    package = (profile.chat_class or "langchain").partition(":")[0].split(".")[0]
    return package.removeprefix("langchain_") or "langchain"


def _server(profile: ModelProfile | None) -> Attributes:
    if profile is None or profile.provider != "openai":
        return {}
    url = profile.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return {}
    return {"server.address": parts.hostname or "", "server.port": port}


def call_attributes(spec: WorkflowSpec, call: CallRecord, attempts: int) -> Attributes:
    profile = spec.models.get(call.profile)
    provider = provider_name(profile)
    usage = call.usage
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,  # the older name, still read by many backends
        "gen_ai.request.model": call.model,
        "gen_ai.response.model": call.model,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "orchestrator.usage.reasoning_tokens": usage.reasoning_tokens,
        "orchestrator.usage.cached_input_tokens": usage.cached_input_tokens,
        "orchestrator.usage.estimated": usage.estimated,
        "orchestrator.cost_usd": call.cost_usd,
        "orchestrator.cached": call.cached,
        "orchestrator.latency_s": call.latency_s,
        "orchestrator.profile": call.profile,
        "orchestrator.call.purpose": call.purpose,
        "orchestrator.retry.attempts": attempts,
        **_server(profile),
    }
    if call.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = (call.finish_reason,)
    if call.step is not None:
        attributes["orchestrator.step.id"] = call.step
    if profile is not None and profile.reasoning_effort:
        attributes["orchestrator.request.reasoning_effort"] = profile.reasoning_effort
    return attributes


def route_attributes(route: Route) -> Attributes:
    attributes: Attributes = {
        "orchestrator.route.policy": route.policy,
        "orchestrator.route.profile": route.profile,
        "orchestrator.route.escalations": route.escalations,
        "orchestrator.route.samples": route.samples,
        "orchestrator.route.why": route.why,
    }
    if route.role is not None:
        attributes["orchestrator.route.role"] = route.role
    if route.checks:
        attributes["orchestrator.route.checks"] = tuple(
            f"{c.check}:{'pass' if c.passed else 'fail'}" for c in route.checks
        )
    return attributes


def step_attributes(result: StepResult) -> Attributes:
    attributes: Attributes = {
        "orchestrator.step.id": result.id,
        "orchestrator.step.kind": result.kind,
        "orchestrator.step.status": result.status,
        "orchestrator.step.depends_on": result.depends_on,
        "orchestrator.cost_usd": result.cost_usd,
        "orchestrator.usage.input_tokens": result.usage.input_tokens,
        "orchestrator.usage.output_tokens": result.usage.output_tokens,
        "orchestrator.usage.reasoning_tokens": result.usage.reasoning_tokens,
        **route_attributes(result.route),
    }
    if result.error:
        attributes["orchestrator.step.error"] = result.error
    return attributes


def attempt_attributes(attempt: FailedAttempt) -> Attributes:
    attributes: Attributes = {
        "orchestrator.retry.attempt": attempt.number,
        "orchestrator.retry.max_attempts": attempt.attempts,
        "orchestrator.retry.reason": attempt.reason,
        "orchestrator.retry.detail": attempt.detail,
        "orchestrator.retry.duration_s": attempt.duration_s,
        "orchestrator.profile": attempt.profile,
        "gen_ai.request.model": attempt.model,
    }
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    if attempt.wait_s is not None:
        attributes["orchestrator.retry.wait_s"] = attempt.wait_s
    return attributes


def result_attributes(result: RunResult) -> Attributes:
    profiles = result.usage.by_profile.values()
    attributes: Attributes = {
        "orchestrator.run.status": result.status,
        "orchestrator.cost_usd": result.usage.cost_usd,
        "orchestrator.calls": sum(p.calls for p in profiles),
        "orchestrator.usage.input_tokens": sum(p.input_tokens for p in profiles),
        "orchestrator.usage.output_tokens": sum(p.output_tokens for p in profiles),
        "orchestrator.usage.reasoning_tokens": sum(p.reasoning_tokens for p in profiles),
        "orchestrator.usage.cached_input_tokens": sum(p.cached_input_tokens for p in profiles),
    }
    if result.error is not None:
        attributes["error.type"] = result.error.type
        attributes["orchestrator.run.error"] = result.error.message
    return attributes
