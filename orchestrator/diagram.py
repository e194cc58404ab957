"""A workflow's shape, described once, and drawn from that one description in two ways.

`topology(spec)` is the description: the nodes (id, label, kind) and edges (label, dashed) of the
default pipeline, or of the workflow's own `graph:`. `mermaid(spec)` writes it as a Mermaid
flowchart and `svg(spec)` draws it as a standalone SVG picture (see orchestrator.picture).
Neither reads the spec except through `topology`, so the two pictures cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .graphspec import END
from .picture import PicEdge, PicNode, render_svg
from .spec import Role, WorkflowSpec

__all__ = [
    "PicEdge",
    "PicNode",
    "Topology",
    "mermaid",
    "node_detail",
    "render_mermaid",
    "role_label",
    "svg",
    "topology",
]

Direction = Literal["LR", "TD"]

# Mermaid node shapes by kind: the stadium for the run's ends, a hexagon for the dispatcher,
# a rectangle for everything else.
_SHAPES: Mapping[str, tuple[str, str]] = {
    "start": ("([", "])"),
    "end": ("([", "])"),
    "dispatch": ("{{", "}}"),
}
_RECT = ("[", "]")
# Characters Mermaid would read as syntax inside a quoted label, as its entity codes.
_MERMAID_ENTITIES = {c: f"#{ord(c)};" for c in "#&<>|`"} | {'"': "#quot;"}


@dataclass(frozen=True)
class Topology:
    """The nodes and edges of a workflow, as both pictures show them.

    `direction` is the Mermaid flow direction ("LR" for the default pipeline, "TD" for custom
    graphs); the SVG picture is always drawn top to bottom. A label's lines are split by "\\n".
    """

    title: str
    direction: Direction
    nodes: tuple[PicNode, ...]
    edges: tuple[PicEdge, ...]


def role_label(spec: WorkflowSpec, role: Role) -> str:
    """`profile: model` for the profile that plays `role`."""
    profile, model = spec.profile_for(role)
    return f"{profile}: {model.model}"


def node_detail(spec: WorkflowSpec, name: str) -> str:
    """A custom node's type and, for model nodes, the profile and model that run it."""
    assert spec.graph is not None
    node = spec.graph.nodes[name]
    if node.calls_model:
        profile = node.profile or spec.profile_for(node.role)[0]
        return f"{node.type} · {profile}: {spec.models[profile].model}"
    if node.type == "python":
        return f"python · {node.function}"
    return node.type


def topology(spec: WorkflowSpec) -> Topology:
    """The workflow's shape: its own `graph:` if it has one, else the default pipeline."""
    return _pipeline(spec) if spec.graph is None else _custom(spec)


def _pipeline(spec: WorkflowSpec) -> Topology:
    """task -> plan -> dispatch -> reason | generate -> synthesize -> answer."""

    def role(name: Role) -> PicNode:
        return PicNode(name, f"{name}\n{role_label(spec, name)}", name)

    limits = spec.limits
    dispatch = f"dispatch\n≤ {limits.concurrency} at once\n≤ {limits.max_subproblems} subproblems"
    nodes = (
        PicNode("START", "task", "start"),
        role("plan"),
        PicNode("dispatch", dispatch, "dispatch"),
        role("reason"),
        role("generate"),
        role("synthesize"),
        PicNode("END", "answer", "end"),
    )
    edges = (
        PicEdge("START", "plan"),
        PicEdge("plan", "dispatch"),
        PicEdge("dispatch", "reason", "kind: reason"),
        PicEdge("dispatch", "generate", "kind: generate"),
        PicEdge("reason", "synthesize"),
        PicEdge("generate", "synthesize"),
        PicEdge("synthesize", "END"),
    )
    return Topology(spec.name, "LR", nodes, edges)


def _custom(spec: WorkflowSpec) -> Topology:
    """START, every node, the map nodes' fan-out, the (conditional) edges, END.

    A node with no edge out ends the run, so it gets an edge to END, as the built graph has.
    """
    graph = spec.graph
    assert graph is not None
    start, end = _unused("START", graph.nodes), _unused("END", graph.nodes)
    nodes = [PicNode(start, "task", "start")]
    edges = [PicEdge(start, graph.entry_node)]
    for name, node in graph.nodes.items():
        nodes.append(PicNode(name, f"{name}\n{node_detail(spec, name)}", node.type))
        if node.type == "map" and node.node:
            edges.append(PicEdge(name, node.node, f"each item of {node.over}", dashed=True))
    for edge in graph.edges:
        target = end if edge.to == END else edge.to
        edges.append(PicEdge(edge.source, target, edge.when or "", dashed=edge.when is not None))
    leaving = {e.source for e in graph.edges}
    sinks = [n for n in graph.nodes if n not in leaving and n not in graph.mapped]
    edges += [PicEdge(name, end) for name in sinks]
    nodes.append(PicNode(end, "answer", "end"))
    return Topology(spec.name, "TD", tuple(nodes), tuple(edges))


def _unused(name: str, taken: Iterable[str]) -> str:
    """`name`, or `name` with underscores after it, so as not to clash with a node's name."""
    names = set(taken)
    while name in names:
        name += "_"
    return name


def mermaid(spec: WorkflowSpec) -> str:
    """The workflow as a Mermaid flowchart, drawn from `topology(spec)`."""
    return render_mermaid(topology(spec))


def svg(spec: WorkflowSpec) -> str:
    """The workflow as a standalone SVG document, drawn from `topology(spec)`."""
    top = topology(spec)
    return render_svg(top.nodes, top.edges, title=top.title)


def render_mermaid(top: Topology) -> str:
    """Node declarations (shape by kind) in order, then the edges (dashed: `-.->`) in order."""
    ids = _mermaid_ids(top.nodes)
    lines = [f"flowchart {top.direction}"]
    if top.title:
        lines.append(f"  accTitle: {' '.join(top.title.split())}")
    for node in top.nodes:
        left, right = _SHAPES.get(node.kind, _RECT)
        lines.append(f'  {ids[node.id]}{left}"{_mermaid_text(node.label)}"{right}')
    for edge in top.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines)


def _mermaid_text(label: str) -> str:
    """A label for inside Mermaid's double quotes: syntax as entity codes, lines as <br/>."""
    return "".join(_MERMAID_ENTITIES.get(c, c) for c in label).replace("\n", "<br/>")


def _mermaid_ids(nodes: Sequence[PicNode]) -> dict[str, str]:
    """A Mermaid-safe, distinct id for each node id: `n_` and its letters, digits and `_`."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in nodes:
        base = "n_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in node.id)
        out, k = base, 1
        while out in used:
            k += 1
            out = f"{base}_{k}"
        used.add(out)
        ids[node.id] = out
    return ids
