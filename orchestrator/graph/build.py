"""One function from a spec to a compiled StateGraph, and its picture."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..spec import Role, WorkflowSpec
from .context import RunContext
from .execute import execute_node
from .plan import plan_node
from .review import after_review, review_node
from .state import RunState
from .synthesize import synthesize_node


def build_graph(
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


def mermaid(spec: WorkflowSpec) -> str:
    """The workflow as a Mermaid flowchart, with the profile and model behind each role."""

    def role(name: Role) -> str:
        profile, model = spec.profile_for(name)
        return f"{profile}: {model.model}"

    limits = spec.limits
    return "\n".join(
        [
            "flowchart LR",
            "  task([task]) --> plan",
            f'  plan["plan<br/>{role("plan")}"] --> dispatch',
            f'  dispatch{{{{"dispatch<br/>≤ {limits.concurrency} at once,'
            f' ≤ {limits.max_subproblems} subproblems"}}}}',
            f'  dispatch -- "kind: reason" --> reason["reason<br/>{role("reason")}"]',
            f'  dispatch -- "kind: generate" --> generate["generate<br/>{role("generate")}"]',
            "  reason --> synthesize",
            "  generate --> synthesize",
            f'  synthesize["synthesize<br/>{role("synthesize")}"] --> answer([answer])',
        ]
    )
