"""The plan node: ask for a Plan, validate it as a DAG, repair, re-plan, or fall back."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from .. import prompts
from ..errors import PlanError
from ..events import PlanReady
from ..models.base import ChatModel, Message, RequestParams, ResponseFormat
from ..spec import WorkflowSpec
from ..steps import Step, StepResult
from .context import RunContext, emit, role_route
from .state import Plan, RunState, plan_json_schema

MAX_REPLANS = 2
SHOWN = 8  # most ids (or repairs) one message lists: a runaway plan's errors stay short


@dataclass(frozen=True)
class Checked:
    """A plan after validation: the runnable subproblems, or the reasons it cannot run."""

    steps: tuple[Step, ...]
    errors: tuple[str, ...]
    repairs: tuple[str, ...]


def parse_plan(content: str) -> Plan | str:
    """The Plan in a model's answer, or a one-line reason it is not one."""
    try:
        return Plan.model_validate(json.loads(content))
    except json.JSONDecodeError as exc:
        return f"the answer is not valid JSON ({exc.msg} at character {exc.pos})"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"the plan does not match the format: {where}: {first['msg']}"


def check_plan(plan: Plan, max_subproblems: int) -> Checked:
    """Validate a plan as a DAG. Unknown and self dependencies are dropped (a repair); duplicate
    ids, emptiness, too many subproblems and cycles make it invalid."""
    errors: list[str] = []
    repairs: list[str] = []
    items = plan.subproblems
    if not items:
        errors.append("the plan has no subproblems")
    if len(items) > max_subproblems:
        errors.append(f"the plan has {len(items)} subproblems; the limit is {max_subproblems}")
    ids = [s.id for s in items]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)  # linear: plans can be huge
    if duplicates:
        errors.append(f"duplicate subproblem ids: {few(duplicates, ', ')}")
    known = set(ids)
    steps: list[Step] = []
    for s in items:
        deps: list[str] = []
        for dep in s.depends_on:
            if dep == s.id:
                repairs.append(f"dropped {s.id}'s dependency on itself")
            elif dep not in known:
                repairs.append(f"dropped {s.id}'s dependency on unknown id '{dep}'")
            elif dep not in deps:
                deps.append(dep)
        steps.append(Step(s.id, s.kind, s.task, tuple(deps)))
    if not duplicates and (cycle := find_cycle(steps)):
        errors.append(describe_cycle(cycle))
    return Checked(tuple(steps), tuple(errors), tuple(repairs))


def few(items: list[str], sep: str) -> str:
    """`items` joined by `sep`, or the first few of them and how many more."""
    if len(items) <= SHOWN:
        return sep.join(items)
    return f"{sep.join(items[:SHOWN])}{sep}... ({len(items) - SHOWN} more)"


def describe_cycle(cycle: list[str]) -> str:
    """A closed path of ids as an error; a long one by its start and its length."""
    if len(cycle) <= SHOWN + 1:
        return "dependency cycle: " + " -> ".join(cycle)
    shown = " -> ".join(cycle[:SHOWN])
    return f"dependency cycle through {len(cycle) - 1} subproblems: {shown} -> ... -> {cycle[-1]}"


def find_cycle(steps: list[Step]) -> list[str] | None:
    """One dependency cycle as a closed path of ids, or None if the graph is acyclic."""
    deps = {s.id: s.depends_on for s in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in deps[node]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state and (found := visit(node)):
            return found
    return None


def fallback_plan(task: str) -> tuple[Step, ...]:
    """The plan used when no valid one could be had: the whole task, reasoned about once."""
    return (Step("s1", "reason", task, ()),)


def planned(spec: WorkflowSpec, steps: Iterable[Step]) -> tuple[StepResult, ...]:
    """The steps, pending, each with the route its kind gives it."""
    routes = {kind: role_route(spec, kind, f"kind: {kind}") for kind in ("reason", "generate")}
    return tuple(StepResult(s, routes[s.kind]) for s in steps if s.kind in routes)


async def plan_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    steps, note = await make_plan(runtime.context, state["task"])
    return {"plan": [s.to_dict() for s in steps], "plan_note": note}


async def make_plan(
    ctx: RunContext, task: str, model: ChatModel | None = None
) -> tuple[tuple[Step, ...], str | None]:
    """Ask for a plan until one validates (two re-plans at most), then repair or fall back."""
    spec = ctx.spec
    model = model or ctx.model_for("plan")
    limit = spec.limits.max_subproblems
    profile = spec.models.get(model.profile)
    local = profile is not None and profile.provider == "local"
    fmt = ResponseFormat("plan", plan_json_schema(limit, grammar=local))
    messages: list[Message] = prompts.load("plan").render(task=task, max_subproblems=str(limit))
    params = RequestParams(purpose="plan", response_format=fmt)
    problems: list[str] = []
    checked: Checked | None = None
    last_answer = ""
    for attempt in range(MAX_REPLANS + 1):
        if attempt:
            messages = [
                *messages,
                Message("assistant", last_answer),
                *prompts.load("replan").render(errors="\n".join(f"- {p}" for p in problems)),
            ]
        response = await model.request(messages, params)
        last_answer = response.content
        parsed = parse_plan(response.content)
        if isinstance(parsed, str):
            problems = [parsed]
            continue
        checked = check_plan(parsed, limit)
        if not checked.errors:
            break
        problems = list(checked.errors)
    if checked is not None and not checked.errors:
        steps = checked.steps
        note = "plan repaired: " + few(list(checked.repairs), "; ") if checked.repairs else None
    elif spec.limits.on_plan_failure == "fail":
        raise PlanError(f"no valid plan after {MAX_REPLANS} re-plans: {'; '.join(problems)}")
    else:
        steps = fallback_plan(task)
        note = f"plan replaced by a single subproblem: {'; '.join(problems)}"
    emit(PlanReady(planned(ctx.spec, steps), note))
    return steps, note
