"""What every node needs besides the state: the spec, the connected models, the event sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..budget import Budget
from ..models.base import CallRecord, ChatModel
from ..spec import Role, WorkflowSpec


@dataclass(frozen=True)
class RunContext:
    """Passed to the graph as LangGraph's runtime context; never checkpointed."""

    spec: WorkflowSpec
    models: Mapping[str, ChatModel]  # profile name -> model
    budget: Budget

    def model_for(self, role: Role) -> ChatModel:
        name, _ = self.spec.profile_for(role)
        return self.models[name]


def emit(event: Any) -> None:
    """Send an event to `Workflow.astream` (LangGraph's custom stream); a no-op outside a run."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)


def emit_calls(calls: tuple[CallRecord, ...] | list[CallRecord]) -> None:
    from ..events import CallFinished

    for call in calls:
        emit(CallFinished(call))
