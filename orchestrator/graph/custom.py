"""A workflow's own `graph:` compiled as a LangGraph StateGraph: one node per spec node, routers
for conditional edges, and a visit count per node so every loop is bounded by `max_iterations`.

What each node type does is nodes.py's; here each node is wrapped to report itself as a step
(events, and its `StepResult` in the state so a resumed or inspected run knows what ran).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from .. import prompts
from ..errors import ExpressionError, OrchestratorError, RunError
from ..events import SubproblemFinished, SubproblemStarted
from ..expr import parse_expression
from ..graphspec import END as SPEC_END
from ..graphspec import GraphSpec
from ..steps import Route, Step, StepResult
from .context import RunContext, emit
from .nodes import Answered, NodeCall, node_route, run_node
from .state import merge

STEPS_KEY = "_steps"  # node name -> StepResult.to_state() of its latest run


def _add_counts(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    return {k: left.get(k, 0) + right.get(k, 0) for k in left.keys() | right.keys()}


def state_schema(graph: GraphSpec) -> type:
    keys = {"task", *graph.state, *(graph.output_key(n) for n in graph.nodes)}
    fields: dict[str, Any] = dict.fromkeys(sorted(keys), Any)
    fields["visits"] = Annotated[dict[str, int], _add_counts]
    fields[STEPS_KEY] = Annotated[dict[str, dict[str, Any]], merge]
    return TypedDict("CustomState", fields, total=False)  # type: ignore[operator]


def _node(graph: GraphSpec, name: str) -> Any:
    node = graph.nodes[name]
    key = graph.output_key(name)
    unset = dict.fromkeys(graph.output_key(n) for n in graph.nodes)
    deps = tuple(e.source for e in graph.edges if e.to == name)
    step = Step(name, node.type, node.prompt or node.type, deps)

    async def run(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        route = node_route(ctx.spec, node)
        emit(SubproblemStarted(step, route))
        started, mark = time.monotonic(), ctx.ledger.mark()

        taken: Route = route

        def finished(
            status: Any, output: str = "", error: str | None = None, route: Route = route
        ) -> StepResult:
            usage, cost = ctx.ledger.spent(name, since=mark)
            elapsed = time.monotonic() - started
            result = StepResult(step, route, status, output, None, usage, cost, elapsed, error)
            emit(SubproblemFinished(result))
            return result

        try:
            # A key no node has written yet reads as empty, as it does in `when` expressions.
            value = await run_node(NodeCall(ctx, graph, name, name, {**unset, **state}))
        except OrchestratorError as exc:
            finished("failed", error=exc.message)
            raise
        if isinstance(value, Answered):
            value, taken = value.value, value.route
        done = finished("done", prompts.show(value), route=taken)
        return {key: value, "visits": {name: 1}, STEPS_KEY: {name: done.to_state()}}

    return run


def _router(graph: GraphSpec, name: str) -> Any:
    edges = [e for e in graph.edges if e.source == name]
    conditional = [(parse_expression(e.when), e.to) for e in edges if e.when is not None]
    defaults = [e.to for e in edges if e.when is None]

    def route(state: dict[str, Any]) -> str | list[str]:
        visits = state.get("visits") or {}

        def open_(target: str) -> bool:
            return target == SPEC_END or visits.get(target, 0) < graph.iterations(target)

        for expression, target in conditional:
            try:
                taken = open_(target) and expression.truthy(state)
            except ExpressionError as exc:
                # The expression was valid; the state it met was not what it expected (a model
                # answered a string where a number was due): the run fails, and can resume.
                raise RunError(f"edge from '{name}' to '{target}': {exc.message}") from None
            if taken:
                return END if target == SPEC_END else target
        chosen = [END if t == SPEC_END else t for t in defaults if open_(t)]
        return chosen if len(chosen) > 1 else (chosen[0] if chosen else END)

    return route


def build_custom_graph(
    graph: GraphSpec, checkpointer: BaseCheckpointSaver[str] | None = None
) -> CompiledStateGraph[Any, RunContext, Any, Any]:
    builder: StateGraph[Any, RunContext, Any, Any] = StateGraph(
        state_schema(graph), context_schema=RunContext
    )
    runnable = [n for n in graph.nodes if n not in graph.mapped]
    for name in runnable:
        builder.add_node(name, _node(graph, name))
    builder.add_edge(START, graph.entry_node)
    for name in runnable:
        targets = {e.to for e in graph.edges if e.source == name}
        path_map = [END if t == SPEC_END else t for t in targets] + [END]
        builder.add_conditional_edges(name, _router(graph, name), list(dict.fromkeys(path_map)))
    return builder.compile(checkpointer=checkpointer, name="orchestrator-custom")
