"""Every shipped workflow as a graph for LangGraph's API server and Studio (`langgraph dev`).

The top-level langgraph.json names one factory here per shipped workflow
(`orchestrator.langgraph:quickstart`, `...:local_math`, ...); `workflow_graph` makes the same
for any workflow file or `Workflow`. Each is a small compiled graph the server runs with its own
checkpointer:

    START -> run -> (paused? answer -> answer ...) -> END

Input: `{"task": ...}` (`approve_plan: true` stops after planning for a decision). `run` runs
the workflow to its end with the SDK, so its plan, subproblems, calls and cost are recorded in
ORCHESTRATOR_HOME like any run, and streams its events as custom stream parts (plan, each
finished subproblem, answer tokens). The thread's state is the run's result: `run_id`,
`status`, `output`, `subproblems`, `usage`, `cost_usd`, `error`. A run that pauses (plan
approval, a human node) interrupts the thread with its question; resume it with
`Command(resume=...)`: "approve", "abort", {"edit": plan}, or, for a human node, the answer.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from orchestrator.errors import UsageError
from orchestrator.events import AnswerToken, Event, PlanReady, RunFinished, SubproblemFinished
from orchestrator.result import RunResult
from orchestrator.resume import Abort, Answer, Approve, Decision, Edit
from orchestrator.runtime import Workflow, last_result

__all__ = ["SHIPPED", "StudioInput", "StudioState", "workflow_graph"]

SHIPPED = (
    "code-change",
    "data-report",
    "local-math",
    "math-cascade",
    "math-router",
    "math-verify",
    "math-vote",
    "quickstart",
    "research-brief",
    "support-triage",
)
"""The shipped workflows langgraph.json serves, by name (each a factory named with `_`)."""


class StudioInput(TypedDict, total=False):
    """What a run on the server takes: the task (required), and whether to stop for approval."""

    task: str
    approve_plan: bool


class StudioState(StudioInput, total=False):
    """A thread's state: the task, then the run's result as `orchestrator run --json` has it."""

    run_id: str
    status: str
    output: str
    subproblems: list[dict[str, Any]]
    usage: dict[str, Any]
    cost_usd: float
    error: dict[str, Any] | None
    question: str | None


def _state_of(result: RunResult) -> StudioState:
    data = result.to_dict()
    return {
        "run_id": result.run_id,
        "status": result.status,
        "output": result.output,
        "subproblems": data["subproblems"],
        "usage": data["usage"],
        "cost_usd": result.usage.cost_usd,
        "error": data["error"],
        "question": result.question,
    }


def _stream_part(event: Event) -> dict[str, Any] | None:
    """An event as a custom stream part (JSON), for the ones worth showing as they happen."""
    if isinstance(event, AnswerToken):
        return {"answer_token": event.text}
    if isinstance(event, PlanReady):
        return {"plan": [step.to_dict() for step in event.subproblems], "note": event.note}
    if isinstance(event, SubproblemFinished):
        return {"subproblem": event.result.to_dict()}
    return None


def decision_of(value: object, status: str) -> Decision:
    """A resume value as a decision: "approve", "abort", {"edit": plan}, else an answer."""
    if status == "awaiting_approval":
        if value in ("approve", True):
            return Approve()
        if value == "abort":
            return Abort()
        if isinstance(value, Mapping) and isinstance(value.get("edit"), list):
            return Edit(value["edit"])
        raise UsageError('a plan review takes "approve", "abort" or {"edit": [steps]}')
    return Answer(value)


def workflow_graph(
    workflow: Workflow | str | os.PathLike[str], *, name: str | None = None
) -> CompiledStateGraph[StudioState, None, StudioInput, StudioState]:
    """A compiled graph that runs `workflow` (a `Workflow`, a file, or a shipped name)."""
    wf = workflow if isinstance(workflow, Workflow) else Workflow.from_yaml(workflow)

    async def run(state: StudioState) -> StudioState:
        task = state.get("task")
        if not isinstance(task, str):
            raise UsageError('the input needs a task: {"task": "..."}')
        write = get_stream_writer()
        result: RunResult | None = None
        async for event in wf.astream(task, approve_plan=bool(state.get("approve_plan"))):
            if (part := _stream_part(event)) is not None:
                write(part)
            if isinstance(event, RunFinished):
                result = event.result
        assert result is not None, "a run's events always end with RunFinished"
        return _state_of(result)

    async def answer(state: StudioState) -> StudioState:
        status, run_id = state.get("status", ""), state.get("run_id", "")
        value = interrupt({"run_id": run_id, "status": status, "question": state.get("question")})
        decision = decision_of(value, status)
        return _state_of(await last_result(wf.astream_resume(run_id, decision)))

    def after(state: StudioState) -> Literal["answer", "__end__"]:
        paused = str(state.get("status", "")).startswith("awaiting_")
        return "answer" if paused else "__end__"

    graph = StateGraph(StudioState, input_schema=StudioInput, output_schema=StudioState)
    graph.add_node("run", run)
    graph.add_node("answer", answer)
    graph.add_edge(START, "run")
    graph.add_conditional_edges("run", after, ["answer", END])
    graph.add_conditional_edges("answer", after, ["answer", END])
    return graph.compile(name=name or wf.spec.name)


@functools.cache
def _shipped_workflow(name: str) -> Workflow:
    """Loaded once per process: the server asks a factory for its graph on every request."""
    return Workflow.from_yaml(name)


def _factory(shipped: str) -> Callable[[], CompiledStateGraph[Any, Any, Any, Any]]:
    def factory() -> CompiledStateGraph[Any, Any, Any, Any]:
        return workflow_graph(_shipped_workflow(shipped))

    factory.__name__ = factory.__qualname__ = shipped.replace("-", "_")
    factory.__doc__ = f"The shipped `{shipped}` workflow as a graph for LangGraph's API server."
    return factory


# One factory per shipped workflow, as langgraph.json names them (the server looks them up in
# the module's namespace, so they must be real attributes).
globals().update({name.replace("-", "_"): _factory(name) for name in SHIPPED})
