"""A workflow's own `graph:` built as a LangGraph StateGraph: one node per spec node, routers for
conditional edges, and a visit count per node so every loop is bounded by `max_iterations`."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.func import task as langgraph_task
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from .. import jsoncheck, prompts
from ..errors import (
    ExpressionError,
    OrchestratorError,
    RunError,
    StructuredOutputError,
    UsageError,
)
from ..events import PlannedItem, PlanReady, SubproblemFinished, SubproblemStarted
from ..expr import parse_expression
from ..graphspec import END as SPEC_END
from ..graphspec import GraphSpec, NodeSpec, resolve_prompt
from ..jsoncheck import is_strict
from ..models.base import ChatModel, Message, ResponseFormat, TokenUsage
from .context import RunContext, call, emit
from .execute import run_plan
from .plan import make_plan
from .synthesize import results_text

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"passed": {"type": "boolean"}, "feedback": {"type": "string"}},
    "required": ["passed", "feedback"],
    "additionalProperties": False,
}
STRUCTURED_RETRIES = 2


def _add_counts(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    return {k: left.get(k, 0) + right.get(k, 0) for k in left.keys() | right.keys()}


def state_schema(graph: GraphSpec) -> type:
    keys = {"task", *graph.state, *(graph.output_key(n) for n in graph.nodes)}
    fields: dict[str, Any] = dict.fromkeys(sorted(keys), Any)
    fields["visits"] = Annotated[dict[str, int], _add_counts]
    fields["trace"] = Annotated[list[dict[str, Any]], operator.add]  # what each node did
    return TypedDict("CustomState", fields, total=False)  # type: ignore[operator]


def base_dir(ctx: RunContext) -> Path | None:
    return Path(ctx.spec.source).resolve().parent if ctx.spec.source else None


def model_for(ctx: RunContext, node: NodeSpec) -> ChatModel:
    return ctx.models[node.profile] if node.profile else ctx.model_for(node.role)


async def _ask(
    ctx: RunContext,
    node: NodeSpec,
    name: str,
    messages: list[Message],
    schema: dict[str, Any] | None,
) -> Any:
    """One model answer; with a schema, JSON that is re-asked for (with the error) until valid."""
    model = model_for(ctx, node)
    fmt = ResponseFormat(name.replace("-", "_"), schema, is_strict(schema)) if schema else None
    for attempt in range(STRUCTURED_RETRIES + 1):
        response = await call(model, messages, purpose=f"node:{name}", response_format=fmt)
        if schema is None:
            return response.content
        try:
            value = json.loads(response.content)
            found = jsoncheck.problem(value, schema)
        except json.JSONDecodeError as exc:
            found = f"the answer is not JSON ({exc.msg})"
        if found is None:
            return value
        if attempt < STRUCTURED_RETRIES:
            messages = [
                *messages,
                Message("assistant", response.content),
                Message(
                    "user",
                    f"That answer is not valid: {found}. Answer again, as JSON "
                    "matching the schema.",
                ),
            ]
    raise StructuredOutputError(
        f"node '{name}': the structured answer never validated: {found}",
        profile=model.profile,
        model=model.model,
    )


async def run_node(ctx: RunContext, graph: GraphSpec, name: str, scope: Mapping[str, Any]) -> Any:
    """What one node computes from the state (`scope`); the caller stores it."""
    node = graph.nodes[name]
    if node.type in ("reason", "generate"):
        template = resolve_prompt(node.prompt or "", base_dir(ctx))
        return await _ask(ctx, node, name, template.render(scope), node.json_schema)
    if node.type == "verify":
        template = resolve_prompt(node.prompt or "verify", base_dir(ctx))
        target = prompts.show(scope.get(node.target or ""))
        messages = template.render(scope, target=target, criteria=node.criteria or "")
        return await _ask(ctx, node, name, messages, VERDICT_SCHEMA)
    if node.type == "plan":
        text = scope["task"]
        if node.prompt:
            text = resolve_prompt(node.prompt, base_dir(ctx)).render(scope)[-1].content
        subproblems, _ = await make_plan(ctx, text, model_for(ctx, node) if node.profile else None)
        results = await run_plan(ctx, text, list(subproblems))
        return results_text([s.to_dict() for s in subproblems], results)
    if node.type == "map":
        root, *keys = (node.over or "").split(".")
        items = scope.get(root)
        for key in keys:
            items = items.get(key) if isinstance(items, Mapping) else None
        if isinstance(items, str):
            items = [line.strip() for line in items.splitlines() if line.strip()]
        if not isinstance(items, list):
            raise RunError(f"node '{name}': {node.over} is not a list: {prompts.show(items)[:80]}")
        slots = asyncio.Semaphore(ctx.spec.limits.concurrency)

        async def one(index: int) -> Any:
            async with slots:
                item = items[index]
                return await run_node(ctx, graph, node.node or "", {**scope, "item": item})

        # Each item is a LangGraph task, called in item order: checkpointed as it lands, so a
        # resumed run pays only for the items that had not finished.
        item_task = cast(
            "Callable[[int], Awaitable[Any]]", langgraph_task(name=f"map:{name}")(cast(Any, one))
        )
        return list(await asyncio.gather(*(item_task(i) for i in range(len(items)))))
    if node.type == "human":
        question = prompts.parse(name, node.message or "").render(scope)[-1].content
        if node.prompt:
            question = resolve_prompt(node.prompt, base_dir(ctx)).render(scope)[-1].content
        return interrupt({"node": name, "message": question})
    return await _call_python(ctx, node, name, scope)


async def _call_python(ctx: RunContext, node: NodeSpec, name: str, scope: Mapping[str, Any]) -> Any:
    ref = node.function or ""
    function = ctx.functions.get(ref)
    if function is None:
        if ref not in ctx.spec.allow_python:
            raise UsageError(f"node '{name}': {ref} is not registered nor in allow_python")
        module, _, attr = ref.partition(":")
        function = getattr(importlib.import_module(module), attr)
    result = function(dict(scope))
    return await result if inspect.isawaitable(result) else result


def _node(ctx_graph: GraphSpec, name: str) -> Any:
    node = ctx_graph.nodes[name]
    key = ctx_graph.output_key(name)
    unset = dict.fromkeys(ctx_graph.output_key(n) for n in ctx_graph.nodes)

    async def run(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        model = model_for(ctx, node) if node.calls_model else None
        profile, model_id = (model.profile, model.model) if model else ("", node.type)
        emit(SubproblemStarted(name, node.type, profile, model_id))
        started = time.monotonic()

        def finished(status: str, output: str = "", error: str | None = None) -> None:
            # Tokens and cost reach views through CallFinished, which names this node.
            elapsed = time.monotonic() - started
            emit(
                SubproblemFinished(
                    name, node.type, profile, model_id, status, output, TokenUsage(), 0.0,
                    elapsed, error,
                )
            )  # fmt: skip

        try:
            # A key no node has written yet reads as empty, as it does in `when` expressions.
            value = await run_node(ctx, ctx_graph, name, {**unset, **state})
        except OrchestratorError as exc:
            finished("failed", error=exc.message)
            raise
        finished("done", prompts.show(value))
        record = {"node": name, "type": node.type, "profile": profile, "model": model_id}
        return {key: value, "visits": {name: 1}, "trace": [record]}

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


def plan_event(ctx: RunContext, graph: GraphSpec) -> PlanReady:
    """The graph's nodes, announced like a plan so live views can list them up front."""
    items = []
    for name, node in graph.nodes.items():
        if name in graph.mapped:
            continue
        model = model_for(ctx, node) if node.calls_model else None
        deps = tuple(e.source for e in graph.edges if e.to == name)
        items.append(
            PlannedItem(
                name,
                node.type,
                node.prompt or node.type,
                deps,
                model.profile if model else "",
                model.model if model else "",
            )
        )
    return PlanReady(tuple(items), None)
