"""What every node needs besides the state: the spec, the connected models, budget, ledger."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models.base import ChatModel
from ..models.budget import Budget
from ..models.ledger import Ledger
from ..spec import Role, WorkflowSpec
from ..steps import Route


@dataclass(frozen=True)
class RunContext:
    """Passed to the graph as LangGraph's runtime context; never checkpointed."""

    spec: WorkflowSpec
    models: Mapping[str, ChatModel]
    """Profile name -> the wrapped model (fallback, cap, budget, ledger) for this run."""
    budget: Budget
    ledger: Ledger
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Python callables registered by name for `python` nodes."""

    def model_for(self, role: Role) -> ChatModel:
        return self.models[self.spec.profile_for(role)[0]]


def role_route(spec: WorkflowSpec, role: Role, why: str) -> Route:
    """The route to the profile that plays `role`."""
    name, profile = spec.profile_for(role)
    return Route(role, name, profile.model, why)


def emit(event: Any) -> None:
    """Send an event to `Workflow.astream` (LangGraph's custom stream); a no-op outside a run."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)
