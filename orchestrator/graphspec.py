"""The `graph:` section of a workflow: custom nodes and edges, and their checks before spending.

Without `graph:`, a workflow runs the default pipeline (plan → solve in parallel → synthesize).
With it, the workflow is its own LangGraph graph:

    graph:
      output: answer               # the state key that is the run's answer
      nodes:
        answer: {type: generate, prompt: solve_math}
        check:  {type: verify, target: answer, criteria: "The arithmetic is right."}
        retry:  {type: reason, prompt: solve_math_again, output: answer}
      edges:
        - {from: answer, to: check}
        - {from: check, to: retry, when: "not check.passed"}
        - {from: retry, to: check}

Every problem is reported with its key path (so the spec error names the line): unknown node
types, edges to missing nodes, unreachable nodes, cycles with no conditional way out, missing
prompts and template variables no node supplies, bad `when` expressions, Python functions that
are not allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import InitErrorDetails, PydanticCustomError

from . import prompts
from .errors import UsageError
from .expr import ExpressionError, parse_expression

NodeType = Literal["plan", "reason", "generate", "verify", "map", "human", "python"]
END = "END"
_FROZEN = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_NEEDS: dict[str, tuple[str, ...]] = {
    "verify": ("target", "criteria"),
    "map": ("over", "node"),
    "python": ("function",),
}
_PROMPTED = ("reason", "generate")
_Problem = tuple[tuple[str | int, ...], str]  # key path under graph:, message


class NodeSpec(BaseModel):
    """One node of a custom graph."""

    model_config = _FROZEN
    type: NodeType = Field(description="plan | reason | generate | verify | map | human | python")
    prompt: str | None = Field(
        default=None, description="Template name in prompts/, or a .md path beside the workflow."
    )
    profile: str | None = Field(default=None, description="Model profile; default: by role.")
    output: str | None = Field(default=None, description="State key written; default: the name.")
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="reason/generate: JSON Schema of the answer."
    )
    target: str | None = Field(default=None, description="verify: the state key to judge.")
    criteria: str | None = Field(default=None, description="verify: what a good result meets.")
    over: str | None = Field(
        default=None, description="map: the state key (or key.path) holding a list."
    )
    node: str | None = Field(default=None, description="map: the node run on each item.")
    function: str | None = Field(
        default=None, description="python: module:function, listed in allow_python."
    )
    message: str | None = Field(default=None, description="human: the question to ask.")
    max_iterations: int | None = Field(
        default=None, ge=1, description="Most runs of this node; default: the graph's."
    )
    policy: str | None = Field(
        default=None,
        description="reason/generate: the policy answering it (default: the workflow's `policy`).",
    )

    @pydantic.model_validator(mode="after")
    def _fields_for_type(self) -> NodeSpec:
        missing = [f for f in _NEEDS.get(self.type, ()) if getattr(self, f) is None]
        if self.type in _PROMPTED and self.prompt is None:
            missing.append("prompt")
        if self.type == "human" and self.message is None and self.prompt is None:
            missing.append("message")
        if missing:
            raise PydanticCustomError(
                "node_fields", f"a {self.type} node needs {', '.join(missing)}"
            )
        if self.policy is not None and self.type not in _PROMPTED:
            raise PydanticCustomError(
                "node_fields", f"policy applies to reason and generate nodes, not {self.type}"
            )
        return self

    @property
    def calls_model(self) -> bool:
        """Whether the node itself asks a model (map, human and python nodes do not)."""
        return self.type in ("plan", "reason", "generate", "verify")

    @property
    def role(self) -> Literal["plan", "reason", "generate"]:
        return "reason" if self.type == "reason" else "plan" if self.type == "plan" else "generate"


class EdgeSpec(BaseModel):
    """An edge; with `when`, taken only if the expression is true (first true edge wins)."""

    model_config = _FROZEN
    source: str = Field(alias="from", description="The node the edge leaves.")
    to: str = Field(description="The node it enters, or END.")
    when: str | None = Field(default=None, description="A condition over the state.")


class GraphSpec(BaseModel):
    """A custom graph instead of the default plan → solve → synthesize pipeline."""

    model_config = _FROZEN
    entry: str | None = Field(default=None, description="First node; default: the first listed.")
    output: str | None = Field(
        default=None, description="State key holding the answer; default: the last node's output."
    )
    max_iterations: int = Field(default=3, ge=1, le=100, description="Most runs of any node.")
    state: dict[str, Any] = Field(default_factory=dict, description="Initial state values.")
    nodes: dict[str, NodeSpec] = Field(min_length=1, description="Node name -> node.")
    edges: list[EdgeSpec] = Field(default_factory=list, description="The edges, in order.")

    def output_key(self, name: str) -> str:
        return self.nodes[name].output or name

    @property
    def entry_node(self) -> str:
        return self.entry or next(iter(self.nodes))

    @property
    def mapped(self) -> frozenset[str]:
        """Nodes run by a map node on each item, rather than by edges."""
        return frozenset(n.node for n in self.nodes.values() if n.type == "map" and n.node)

    @property
    def answer_key(self) -> str:
        if self.output:
            return self.output
        # The last node that ends the run: an edge to END, else no edge out at all. A node
        # that a map node runs on each item never ends the run itself.
        runnable = [n for n in self.nodes if n not in self.mapped]
        sources = {e.source for e in self.edges}
        to_end = [e.source for e in self.edges if e.to == END]
        to_end = to_end or [n for n in runnable if n not in sources]
        return self.output_key(to_end[-1] if to_end else runnable[-1])

    def iterations(self, name: str) -> int:
        return self.nodes[name].max_iterations or self.max_iterations


def resolve_prompt(ref: str, base_dir: Path | None) -> prompts.Template:
    """A node's prompt: a .md path beside the workflow file, else a shipped template's name."""
    if ref.endswith(".md") or "/" in ref:
        path = Path(ref) if base_dir is None else base_dir / ref
        if not path.is_file():
            raise UsageError(f"no prompt file {path}")
        return prompts.parse(ref, path.read_text(encoding="utf-8"))
    return prompts.load(ref)


def check_graph(
    graph: GraphSpec,
    profiles: Mapping[str, Any],
    allow_python: list[str],
    base_dir: Path | None,
) -> list[InitErrorDetails]:
    """Everything `orchestrator validate` checks about a graph, as located errors."""
    problems: list[_Problem] = []
    if graph.entry is not None and graph.entry not in graph.nodes:
        problems.append((("entry",), f"no node named {graph.entry!r}"))
    supplied = {"task", *graph.state, *(graph.output_key(n) for n in graph.nodes)}
    for name in graph.nodes:
        problems += _node_problems(graph, name, supplied, profiles, allow_python)
        problems += _prompt_problems(graph, name, supplied, base_dir)
    for index, edge in enumerate(graph.edges):
        problems += _edge_problems(graph, index, edge, supplied)
    if not problems:  # walking the flow needs every edge to name real nodes
        problems += _flow_problems(graph)
    return [
        InitErrorDetails(
            type=PydanticCustomError("graph", message), loc=("graph", *loc), input=None
        )
        for loc, message in problems
    ]


def _node_problems(
    graph: GraphSpec,
    name: str,
    supplied: set[str],
    profiles: Mapping[str, Any],
    allow_python: list[str],
) -> Iterator[_Problem]:
    """What a node names: its profile, a map node's node and list, a verify node's target."""
    node = graph.nodes[name]
    if node.profile is not None and node.profile not in profiles:
        yield ("nodes", name, "profile"), f"unknown profile {node.profile!r}"
    if node.type == "map" and node.node is not None:
        if node.node not in graph.nodes or node.node == name:
            yield ("nodes", name, "node"), f"no other node named {node.node!r}"
        if (node.over or "").split(".")[0] not in supplied:
            yield ("nodes", name, "over"), f"no node or initial state supplies {node.over!r}"
    if node.type == "verify" and node.target not in supplied:
        yield ("nodes", name, "target"), f"no node or initial state supplies {node.target!r}"
    python = node.function if node.type == "python" else None
    if python is not None and ":" in python and python not in allow_python:
        yield (
            ("nodes", name, "function"),
            f"{python} runs code: list it under allow_python to allow it",
        )


def _prompt_problems(
    graph: GraphSpec, name: str, supplied: set[str], base_dir: Path | None
) -> Iterator[_Problem]:
    """A node's prompt must exist, and every variable it uses must be in the state."""
    node = graph.nodes[name]
    if node.prompt is None:
        return
    try:
        template = resolve_prompt(node.prompt, base_dir)
    except UsageError as exc:
        yield ("nodes", name, "prompt"), exc.message
        return
    known = supplied | ({"item"} if name in graph.mapped else set())
    if node.type == "verify":
        known |= {"target", "criteria"}
    unknown = sorted(template.variables - known)
    if unknown:
        yield (
            ("nodes", name, "prompt"),
            f"the template needs {', '.join(unknown)}, which nothing in the graph "
            f"supplies (state: {', '.join(sorted(known))})",
        )


def _edge_problems(
    graph: GraphSpec, index: int, edge: EdgeSpec, supplied: set[str]
) -> Iterator[_Problem]:
    """An edge's ends must be nodes (or END) and its `when` a valid expression over the state."""
    if edge.source not in graph.nodes:
        yield ("edges", index, "from"), f"no node named {edge.source!r}"
    if edge.to != END and edge.to not in graph.nodes:
        yield ("edges", index, "to"), f"no node named {edge.to!r} (or END)"
    if edge.source in graph.mapped or edge.to in graph.mapped:
        yield ("edges", index), "a node run by a map node takes no edges"
    if edge.when is None:
        return
    try:
        expression = parse_expression(edge.when)
    except ExpressionError as exc:
        yield ("edges", index, "when"), str(exc)
        return
    unknown = sorted(expression.names - supplied)
    if unknown:
        yield ("edges", index, "when"), f"reads {', '.join(unknown)}, which no node writes"


def _flow_problems(graph: GraphSpec) -> Iterator[_Problem]:
    """Reachability from the entry, and a conditional way out of every cycle."""
    out: dict[str, list[EdgeSpec]] = {n: [] for n in graph.nodes}
    for edge in graph.edges:
        out[edge.source].append(edge)
    seen, stack = set(), [graph.entry_node]
    while stack:
        node = stack.pop()
        if node in seen or node == END:
            continue
        seen.add(node)
        stack.extend(e.to for e in out[node])
    for name in graph.nodes:
        if name not in seen and name not in graph.mapped:
            yield ("nodes", name), f"node {name!r} cannot be reached from {graph.entry_node!r}"
    # A cycle made only of unconditional edges can never be left.
    always = {n: [e.to for e in edges if e.when is None] for n, edges in out.items()}
    for start in graph.nodes:
        path, node = [start], start
        while len(always.get(node, [])) == 1 and not any(e.when for e in out[node]):
            node = always[node][0]
            if node == start:
                yield (
                    ("nodes", start),
                    "unbounded cycle "
                    + " -> ".join([*path, start])
                    + ": add a `when` condition to one of its edges",
                )
                return
            if node in path or node == END:
                break
            path.append(node)
