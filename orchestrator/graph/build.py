"""One function from a spec to a compiled StateGraph (the picture of it is diagram.py's)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..spec import WorkflowSpec
from .context import RunContext
from .custom import build_custom_graph
from .execute import execute_node
from .plan import plan_node
from .review import after_review, review_node
from .state import RunState
from .synthesize import synthesize_node


def build_graph(
    spec: WorkflowSpec, checkpointer: BaseCheckpointSaver[str] | None = None
) -> CompiledStateGraph[Any, RunContext, Any, Any]:
    """The workflow's own `graph:` if it has one, else the default pipeline."""
    if spec.graph is not None:
        return build_custom_graph(spec.graph, checkpointer)
    return build_default_graph(checkpointer)


def build_default_graph(
    checkpointer: BaseCheckpointSaver[str] | None = None,
) -> CompiledStateGraph[RunState, RunContext, RunState, RunState]:
    """plan -> review -> execute (the scheduler) -> synthesize, with an optional checkpointer.

    `review` passes straight through unless the run asked for plan approval.
    """
    graph = StateGraph(RunState, context_schema=RunContext)
    graph.add_node("plan", plan_node)
    graph.add_node("review", review_node)
    graph.add_node("execute", execute_node)
    graph.add_node("synthesize", synthesize_node)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "review")
    graph.add_conditional_edges("review", after_review, ["execute", END])
    graph.add_edge("execute", "synthesize")
    graph.add_edge("synthesize", END)
    return graph.compile(checkpointer=checkpointer, name="orchestrator")
