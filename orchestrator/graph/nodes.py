"""What each custom-graph node type does: one function per type, found in `RUNNERS`.

A runner gets a `NodeCall` (the run context, the node, the state it reads) and returns the value
the node writes (reason/generate nodes: an `Answered`, the value with the route its policy
took); compiling the graph and reporting steps is custom.py's job.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from langgraph.func import task as langgraph_task
from langgraph.types import interrupt

from .. import prompts
from ..errors import RunError
from ..graphspec import GraphSpec, NodeSpec, resolve_prompt
from ..models.base import ChatModel, Message, ModelResponse, RequestParams
from ..resume import Question, pause_value
from ..spec import WorkflowSpec
from ..steps import Kind, Route, Step, StepResult
from .context import RunContext, role_route
from .execute import run_plan
from .plan import make_plan
from .structured import VERDICT_SCHEMA, ask_structured, response_format
from .synthesize import results_text


@dataclass(frozen=True)
class NodeCall:
    """One run of one node: `name` is the node, `step` the step its calls are billed to (a map
    node's items bill the map node), `scope` the state it reads."""

    ctx: RunContext
    graph: GraphSpec
    name: str
    step: str
    scope: Mapping[str, Any]

    @property
    def node(self) -> NodeSpec:
        return self.graph.nodes[self.name]

    def render(self, ref: str, **more: Any) -> list[Message]:
        return resolve_prompt(ref, self.ctx.spec.base_dir).render(self.scope, **more)


def node_route(spec: WorkflowSpec, node: NodeSpec) -> Route:
    """Who answers a node: its own `profile:`, else the profile of its type's role."""
    if not node.calls_model:
        return Route(None, "", "")
    if node.profile:
        return Route(node.role, node.profile, spec.models[node.profile].model, "node profile")
    return role_route(spec, node.role, f"node type: {node.type}")


def graph_steps(spec: WorkflowSpec) -> tuple[StepResult, ...]:
    """A custom graph's nodes as pending steps (what its `PlanReady` announces)."""
    graph = spec.graph
    assert graph is not None
    steps = []
    for name, node in graph.nodes.items():
        if name not in graph.mapped:
            deps = tuple(e.source for e in graph.edges if e.to == name)
            step = Step(name, node.type, node.prompt or node.type, deps)
            steps.append(StepResult(step, node_route(spec, node)))
    return tuple(steps)


def model_for(call: NodeCall, role: Kind | None = None) -> ChatModel:
    """The model answering the node: its own `profile:` for its type's role, else the role's."""
    node = call.node
    if node.profile and (role is None or role == node.role):
        return call.ctx.models[node.profile]
    return call.ctx.model_for(role or node.role)


@dataclass(frozen=True)
class Answered:
    """A node's value together with the route a policy took to it."""

    value: Any
    route: Route


async def _prompted(call: NodeCall) -> Answered:
    """A reason/generate node: its policy decides who answers (by default its type's role)."""
    from ..policies import Ask

    node = call.node
    schema = node.json_schema
    what = f"node '{call.name}'"
    fmt = response_format(call.name, schema) if schema is not None else None

    async def respond(role: Kind, extra: Sequence[Message], params: RequestParams) -> ModelResponse:
        model, messages = model_for(call, role), [*call.render(node.prompt or ""), *extra]
        if schema is None:
            return await model.request(messages, params)
        return (await ask_structured(model, messages, params, schema, what))[1]

    label: Kind = "reason" if node.type == "reason" else "generate"
    step = Step(call.name, node.type, node.prompt or node.type)
    params = RequestParams(purpose="node", step=call.step, response_format=fmt)
    task = prompts.show(call.scope.get("task"))
    routed = await call.ctx.policy(node.policy).answer(
        call.ctx, Ask(step, label, task, params, respond)
    )
    content = routed.response.content
    return Answered(json.loads(content) if schema is not None else content, routed.route)


async def _verify(call: NodeCall) -> Any:
    node = call.node
    target = prompts.show(call.scope.get(node.target or ""))
    messages = call.render(node.prompt or "verify", target=target, criteria=node.criteria or "")
    params = RequestParams(purpose="node", step=call.step)
    value, _ = await ask_structured(model_for(call), messages, params, VERDICT_SCHEMA, call.name)
    return value


async def _plan(call: NodeCall) -> Any:
    text = call.scope["task"]
    if call.node.prompt:
        text = call.render(call.node.prompt)[-1].content
    model = model_for(call) if call.node.profile else None
    steps, _ = await make_plan(call.ctx, text, model)
    results = await run_plan(call.ctx, text, list(steps))
    return results_text(list(steps), {sid: r.output for sid, r in results.items()})


def _items(call: NodeCall) -> list[Any]:
    """The list a map node runs over: `over` is a state key, or a key.path into one."""
    root, *keys = (call.node.over or "").split(".")
    items = call.scope.get(root)
    for key in keys:
        items = items.get(key) if isinstance(items, Mapping) else None
    if isinstance(items, str):
        items = [line.strip() for line in items.splitlines() if line.strip()]
    if not isinstance(items, list):
        shown = prompts.show(items)[:80]
        raise RunError(f"node '{call.name}': {call.node.over} is not a list: {shown}")
    return items


async def _map(call: NodeCall) -> Any:
    items = _items(call)
    slots = asyncio.Semaphore(call.ctx.spec.limits.concurrency)

    async def one(index: int) -> Any:
        async with slots:
            scope = {**call.scope, "item": items[index]}
            value = await run_node(replace(call, name=call.node.node or "", scope=scope))
            return value.value if isinstance(value, Answered) else value

    # Each item is a LangGraph task, called in item order: checkpointed as it lands, so a
    # resumed run pays only for the items that had not finished.
    item_task = cast(
        "Callable[[int], Awaitable[Any]]",
        langgraph_task(name=f"map:{call.name}")(cast(Any, one)),
    )
    # Items in flight when one fails are paid for: let them land (and be checkpointed), then
    # fail the node, so a resume pays only for what did not finish.
    outcomes = await asyncio.gather(
        *(item_task(i) for i in range(len(items))), return_exceptions=True
    )
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
    return outcomes


async def _human(call: NodeCall) -> Any:
    node = call.node
    question = prompts.parse(call.name, node.message or "").render(call.scope)[-1].content
    if node.prompt:
        question = call.render(node.prompt)[-1].content
    return interrupt(pause_value(Question(call.name, question)))


async def _python(call: NodeCall) -> Any:
    function = call.ctx.function(call.node.function or "", f"node '{call.name}'")
    result = function(dict(call.scope))
    return await result if inspect.isawaitable(result) else result


RUNNERS: dict[str, Callable[[NodeCall], Awaitable[Any]]] = {
    "reason": _prompted,
    "generate": _prompted,
    "verify": _verify,
    "plan": _plan,
    "map": _map,
    "human": _human,
    "python": _python,
}


async def run_node(call: NodeCall) -> Any:
    """What one node computes from the state; the caller stores it."""
    return await RUNNERS[call.node.type](call)
