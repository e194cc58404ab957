"""What every node needs besides the state: the spec, the connected models, budget, ledger."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..models.base import ChatModel
from ..models.budget import Budget
from ..models.ledger import Ledger
from ..spec import Role, WorkflowSpec
from ..steps import Route

if TYPE_CHECKING:
    from ..models.embeddings import Embedder
    from ..policies import Policy

EmbedderFactory = Callable[[str], Awaitable["Embedder"]]
"""Profile name -> an embedder billed to the run (for a router that reads embeddings)."""


@dataclass(frozen=True)
class RunContext:
    """Passed to the graph as LangGraph's runtime context; never checkpointed."""

    spec: WorkflowSpec
    models: Mapping[str, ChatModel]
    """Profile name -> the wrapped model (fallback, cap, budget, ledger) for this run."""
    budget: Budget
    ledger: Ledger
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Python callables registered by name for `python` nodes and checks."""
    policy_override: str | None = None
    """A policy for every step, whatever the workflow says (an evaluation's)."""
    policies: dict[str, Policy] = field(default_factory=dict)
    """Policies made so far in this run, by name."""
    embedder: EmbedderFactory | None = None

    def model_for(self, role: Role) -> ChatModel:
        return self.models[self.spec.profile_for(role)[0]]

    def policy(self, name: str | None = None) -> Policy:
        """The policy for a step: the override, else `name` (a node's), else the workflow's."""
        from ..policies import make_policy

        chosen = self.policy_override or name or self.spec.policy
        if chosen not in self.policies:
            self.policies[chosen] = make_policy(chosen, self)
        return self.policies[chosen]

    def prepare_policies(self) -> None:
        """Make every policy this run can use now, so a bad one fails before any call."""
        graph = self.spec.graph
        nodes = [n.policy for n in graph.nodes.values()] if graph else []
        for name in {self.policy_override} if self.policy_override else {None, *nodes}:
            self.policy(name)

    def function(self, ref: str, what: str) -> Callable[..., Any]:
        """A Python callable: registered with `Workflow(functions=...)`, or a module:function
        the workflow lists under allow_python (running code is opt-in)."""
        function = self.functions.get(ref)
        if function is not None:
            return function
        if ref not in self.spec.allow_python:
            raise UsageError(f"{what}: {ref} is not registered nor in allow_python")
        module, _, attr = ref.partition(":")
        found: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return found


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
