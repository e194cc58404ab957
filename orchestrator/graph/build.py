"""One function from a spec to a compiled StateGraph, and its picture."""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..graphspec import END as END_NODE
from ..picture import PicEdge, PicNode, render_svg
from ..spec import Role, WorkflowSpec
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


def mermaid(spec: WorkflowSpec) -> str:
    """The workflow as a Mermaid flowchart, with the profile and model behind each role."""
    if spec.graph is not None:
        return _custom_mermaid(spec)

    role = partial(role_label, spec)
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


def _custom_mermaid(spec: WorkflowSpec) -> str:
    graph = spec.graph
    assert graph is not None
    lines = ["flowchart TD", f"  START([task]) --> {_id(graph.entry_node)}"]
    for name, node in graph.nodes.items():
        detail = node_detail(spec, name)
        lines.append(f'  {_id(name)}["{name}<br/>{detail}"]')
        if node.type == "map" and node.node:
            lines.append(f'  {_id(name)} -. "each item of {node.over}" .-> {_id(node.node)}')
    for edge in graph.edges:
        target = "END([answer])" if edge.to == END_NODE else _id(edge.to)
        if edge.when:
            label = edge.when.replace('"', "'")
            lines.append(f'  {_id(edge.source)} -- "{label}" --> {target}')
        else:
            lines.append(f"  {_id(edge.source)} --> {target}")
    return "\n".join(lines)


def role_label(spec: WorkflowSpec, role: Role) -> str:
    """`profile: model` for the profile that plays `role`."""
    profile, model = spec.profile_for(role)
    return f"{profile}: {model.model}"


def node_detail(spec: WorkflowSpec, name: str) -> str:
    """A node's type and, for model nodes, the profile and model that run it."""
    assert spec.graph is not None
    node = spec.graph.nodes[name]
    if node.calls_model:
        profile = node.profile or spec.profile_for(node.role)[0]
        return f"{node.type} · {profile}: {spec.models[profile].model}"
    if node.type == "python":
        return f"python · {node.function}"
    return node.type


def _id(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def picture(spec: WorkflowSpec) -> str:
    """The workflow as an SVG image (drawn here: no graphviz or browser needed)."""
    nodes = [PicNode("START", "task", "start")]
    edges: list[PicEdge] = []
    graph = spec.graph
    if graph is None:

        def role(name: Role) -> str:
            return f"{name}\n{role_label(spec, name)}"

        limits = spec.limits
        nodes += [
            PicNode("plan", role("plan"), "plan"),
            PicNode("dispatch", f"dispatch ≤ {limits.concurrency} at once", "dispatch"),
            PicNode("reason", role("reason"), "reason"),
            PicNode("generate", role("generate"), "generate"),
            PicNode("synthesize", role("synthesize"), "generate"),
        ]
        edges += [
            PicEdge("START", "plan"),
            PicEdge("plan", "dispatch"),
            PicEdge("dispatch", "reason", "kind: reason"),
            PicEdge("dispatch", "generate", "kind: generate"),
            PicEdge("reason", "synthesize"),
            PicEdge("generate", "synthesize"),
            PicEdge("synthesize", "END"),
        ]
    else:
        for name, node in graph.nodes.items():
            nodes.append(PicNode(name, f"{name}\n{node_detail(spec, name)}", node.type))
            if node.type == "map" and node.node:
                edges.append(PicEdge(name, node.node, f"each of {node.over}", dashed=True))
        edges.append(PicEdge("START", graph.entry_node))
        for edge in graph.edges:
            edges.append(PicEdge(edge.source, edge.to, edge.when or "", dashed=bool(edge.when)))
    nodes.append(PicNode("END", "answer", "end"))
    return render_svg(nodes, edges, title=spec.name)
