"""What every node needs besides the state: the spec, the connected models, the event sink."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..budget import Budget
from ..errors import OrchestratorError
from ..models.base import ChatModel, Message, ModelResponse
from ..spec import Role, WorkflowSpec


@dataclass(frozen=True)
class RunContext:
    """Passed to the graph as LangGraph's runtime context; never checkpointed."""

    spec: WorkflowSpec
    models: Mapping[str, ChatModel]  # profile name -> model
    budget: Budget
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # python nodes

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


async def call(model: ChatModel, messages: list[Message], **options: Any) -> ModelResponse:
    """One model request whose billed calls reach the run log, whether it succeeds or fails."""
    from ..events import CallFinished

    try:
        response = await model.request(messages, **options)
    except OrchestratorError as exc:
        for record in exc.calls:
            emit(CallFinished(record))
        raise
    for record in response.calls:
        emit(CallFinished(record))
    return response
