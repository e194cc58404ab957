"""Model calls as LangSmith LLM runs, children of the LangGraph run that made them.

With LangSmith tracing on (`LANGSMITH_TRACING=true`), LangChain's tracer already records the
graph and its node runs. Our models call their endpoints directly, so each billed call is
reported here as an `llm` run, from its call record, with its real start and end, its token
usage and cost, under the node (or subproblem task) it was made in: found through LangChain's
runnable config, which LangGraph sets for the code a node runs. Its inputs are the messages as
sent (OpenAI's chat shape, instructions as `system`) and its outputs the answer, with any
reasoning trace apart, so the trace reads like one of LangChain's own chat model runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..models.base import CallRecord
from ..models.ledger import Exchange
from ..spec import WorkflowSpec
from .attributes import provider_name


def langsmith_enabled() -> bool:
    """LangSmith tracing is on (`LANGSMITH_TRACING`, or a `tracing_context`)."""
    try:
        from langsmith.run_helpers import get_tracing_context
        from langsmith.utils import tracing_is_enabled
    except ImportError:  # pragma: no cover - langsmith comes with langchain-core
        return False
    enabled = get_tracing_context().get("enabled")
    return bool(enabled) if enabled is not None else bool(tracing_is_enabled())


def usage_metadata(call: CallRecord) -> dict[str, Any]:
    """LangChain's `usage_metadata` shape, plus the call's cost."""
    usage = call.usage
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "input_token_details": {"cache_read": usage.cached_input_tokens},
        "output_token_details": {"reasoning": usage.reasoning_tokens},
        "total_cost": call.cost_usd,
    }


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _inputs(call: CallRecord, exchange: Exchange | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"purpose": call.purpose, "step": call.step, "model": call.model}
    if exchange is not None:
        inputs["messages"] = [
            {"role": "system" if m.role == "instruction" else m.role, "content": m.content}
            for m in exchange.messages
        ]
    return inputs


def _outputs(call: CallRecord, exchange: Exchange | None) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "usage_metadata": usage_metadata(call),
        "finish_reason": call.finish_reason,
    }
    if exchange is not None:
        message: dict[str, Any] = {"role": "assistant", "content": exchange.response.content}
        if exchange.response.trace:
            message["reasoning_content"] = exchange.response.trace
        outputs["choices"] = [{"message": message, "finish_reason": call.finish_reason}]
    return outputs


def report_call(spec: WorkflowSpec, call: CallRecord, exchange: Exchange | None = None) -> None:
    """Post `call` as an LLM run under the current LangGraph run (a no-op outside one)."""
    from langsmith.run_trees import RunTree

    parent = RunTree.from_runnable_config(None)
    if parent is None:
        return
    usage = usage_metadata(call)
    metadata = {
        "ls_provider": provider_name(spec.models.get(call.profile)),
        "ls_model_name": call.model,
        "ls_model_type": "chat",
        "orchestrator_profile": call.profile,
        "orchestrator_purpose": call.purpose,
        "orchestrator_step": call.step,
        "orchestrator_cached": call.cached,
        "usage_metadata": usage,
    }
    end = call.started_at + (0.0 if call.cached else call.latency_s)
    child = parent.create_child(
        call.profile,
        "llm",
        inputs=_inputs(call, exchange),
        start_time=_when(call.started_at),
        extra={"metadata": metadata, "invocation_params": {"model": call.model}},
        tags=[f"profile:{call.profile}"],
    )
    child.end(
        outputs=_outputs(call, exchange),
        end_time=max(_when(end), child.start_time),
    )
    child.post()  # queued: the client sends it from its own thread
