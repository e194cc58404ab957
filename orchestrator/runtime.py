"""`Workflow`: the SDK's entry point. Async at its core; `run` wraps `arun`."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, cast

from langgraph.types import Command

from .budget import Budget
from .checkpoints import checkpointer
from .errors import BudgetExceededError, RunError, UsageError
from .events import (
    CallFinished,
    Event,
    RunFinished,
)
from .graph.build import build_graph, mermaid
from .graph.context import RunContext
from .graph.custom import plan_event
from .graph.review import ABORTED, Decision, validate_edit
from .models import local
from .models.base import ChatModel
from .models.fallback import FallbackModel
from .models.openai import ClientPool, OpenAIChatModel, resolve_endpoint
from .result import ErrorInfo, RunResult, Status, Usage
from .runlog import RunLog
from .spec import WorkflowSpec, load_workflow
from .tracker import RunTracker, waiting_for


def orchestrator_home() -> Path:
    """Where checkpoints and the run log live: $ORCHESTRATOR_HOME, else ~/.orchestrator."""
    return Path(os.environ.get("ORCHESTRATOR_HOME") or Path.home() / ".orchestrator")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4)


class Workflow:
    """A workflow spec, ready to run tasks.

    `models` replaces the model behind any profile by name (for tests, or any backend that
    implements `ChatModel`); the rest are connected from the spec when a run starts.
    `functions` registers Python callables by name for the graph's `python` nodes
    (`function: name`): registering is the application's opt-in, so no `allow_python` entry
    is needed for them.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        models: Mapping[str, ChatModel] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        self.spec = spec
        self.functions = dict(functions or {})
        self._models = dict(models or {})
        unknown = self._models.keys() - spec.models.keys()
        if unknown:
            raise UsageError(f"models given for unknown profiles: {', '.join(sorted(unknown))}")
        self._home = Path(home) if home is not None else None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **kwargs: Any) -> Workflow:
        return cls(load_workflow(path), **kwargs)

    def __repr__(self) -> str:
        return f"Workflow({self.spec.name!r})"

    @property
    def home(self) -> Path:
        return self._home or orchestrator_home()

    def mermaid(self) -> str:
        return mermaid(self.spec)

    def run(self, task: str, *, run_id: str | None = None, approve_plan: bool = False) -> RunResult:
        """Run a task to the end (blocking). Use `arun` inside an event loop."""
        return _blocking(self.arun(task, run_id=run_id, approve_plan=approve_plan), "run")

    async def arun(
        self, task: str, *, run_id: str | None = None, approve_plan: bool = False
    ) -> RunResult:
        return await last_result(self.astream(task, run_id=run_id, approve_plan=approve_plan))

    async def astream(
        self, task: str, *, run_id: str | None = None, approve_plan: bool = False
    ) -> AsyncIterator[Event]:
        """Run a task, yielding typed events as they happen; the last is `RunFinished`.

        With `approve_plan`, the run stops after planning with status `awaiting_approval`;
        continue it with `aresume(run_id, decision=...)`.
        """
        if not task or not task.strip():
            raise UsageError("the task is empty: give some input text")
        graph_input: dict[str, Any] = {"task": task, "approve_plan": approve_plan}
        if self.spec.graph is not None:
            if approve_plan:
                raise UsageError(
                    "approve_plan applies to the default pipeline; a custom graph asks people "
                    "with a human node"
                )
            graph_input = {**self.spec.graph.state, "task": task}
        async for event in self._stream(graph_input, run_id or new_run_id()):
            yield event

    def resume(
        self,
        run_id: str,
        *,
        decision: Decision | None = None,
        plan: list[dict[str, Any]] | None = None,
        answer: Any = None,
    ) -> RunResult:
        """Continue a run that failed, was killed or awaits approval (blocking)."""
        return _blocking(
            self.aresume(run_id, decision=decision, plan=plan, answer=answer), "resume"
        )

    async def aresume(
        self,
        run_id: str,
        *,
        decision: Decision | None = None,
        plan: list[dict[str, Any]] | None = None,
        answer: Any = None,
    ) -> RunResult:
        return await last_result(
            self.astream_resume(run_id, decision=decision, plan=plan, answer=answer)
        )

    async def astream_resume(
        self,
        run_id: str,
        *,
        decision: Decision | None = None,
        plan: list[dict[str, Any]] | None = None,
        answer: Any = None,
    ) -> AsyncIterator[Event]:
        """Continue a run from its last checkpoint: no re-planning, and every subproblem that
        finished before is taken from the checkpoint instead of calling its model again.

        A run awaiting plan approval needs a `decision`: `approve`, `abort`, or `edit` with
        `plan` (subproblems in the plan format), which is validated like a planner's plan.
        A run awaiting input (a human node) needs the `answer`.
        """
        command: Command[Any] | None = None
        if answer is not None:
            command = Command(resume=answer)
        elif decision is not None:
            if decision not in ("approve", "edit", "abort"):
                raise UsageError(f"decision must be approve, edit or abort, not {decision!r}")
            review: dict[str, Any] = {"action": decision}
            if decision == "edit":
                if plan is None:
                    raise UsageError("decision='edit' needs the edited plan")
                review["plan"] = validate_edit(plan, self.spec.limits.max_subproblems)
            command = Command(resume=review)
        async for event in self._stream(command, run_id):
            yield event

    async def ainspect(self, run_id: str) -> RunResult:
        """A run as it stands (plan, finished subproblems, cost), without running anything."""
        runlog = RunLog(self.home)
        row = runlog.get(run_id)
        async with checkpointer(self.home) as cp:
            snapshot = await build_graph(self.spec, cp).aget_state(
                {"configurable": {"thread_id": run_id}}
            )
        if row is None or not snapshot.values:
            raise UsageError(f"no run with id {run_id} in {self.home}")
        tracker = RunTracker(self.spec)
        tracker.state = dict(snapshot.values)
        status: Status = "failed"
        if snapshot.interrupts:
            status, tracker.question = waiting_for(snapshot.interrupts)
        if row.status in ("completed", "budget_exceeded"):
            status = cast(Status, row.status)
        error = ErrorInfo("Unfinished", f"run is {row.status}") if status == "failed" else None
        return tracker.result(run_id, status, error, Usage.from_calls(runlog.calls(run_id)))

    async def _connect(self, pool: ClientPool, budget: Budget) -> dict[str, ChatModel]:
        """A model for every profile the workflow can use; an unused profile needs no key."""
        models: dict[str, ChatModel] = dict(self._models)
        used = self.spec.used_profiles()
        for name, profile in self.spec.models.items():
            if name in models or name not in used:
                continue
            if profile.provider == "local":
                base_url = await asyncio.to_thread(local.ensure_started)
                client = pool.get(base_url, "local")
            else:
                base_url, key = resolve_endpoint(name, profile)
                client = pool.get(base_url, key)
            models[name] = OpenAIChatModel(name, profile, client, base_url, budget)
        chained: dict[str, ChatModel] = {}

        def with_fallback(name: str) -> ChatModel:
            # a -> b -> c: a falls back to b, which falls back to c (the spec refuses loops)
            if name not in chained:
                fallback = self.spec.models[name].fallback
                chained[name] = (
                    FallbackModel(models[name], with_fallback(fallback))
                    if fallback and fallback in models
                    else models[name]
                )
            return chained[name]

        return {name: with_fallback(name) for name in models}

    async def _stream(
        self, graph_input: dict[str, Any] | Command[Any] | None, run_id: str
    ) -> AsyncIterator[Event]:
        """Run (a dict input), resume (None) or answer a review (a Command) one run."""
        starting = isinstance(graph_input, dict)
        runlog = RunLog(self.home)
        pool = ClientPool()
        tracker = RunTracker(self.spec)
        try:
            spent = sum(call.cost_usd for call in runlog.calls(run_id))
            budget = Budget(self.spec.limits.budget_usd, spent_usd=spent)
            models = await self._connect(pool, budget)
            context = RunContext(self.spec, models, budget, self.functions)
            async with checkpointer(self.home) as cp:
                graph = build_graph(self.spec, cp)
                config: Any = {"configurable": {"thread_id": run_id}}
                prior = await graph.aget_state(config)
                if starting and prior.values:
                    raise UsageError(
                        f"run {run_id} already exists: resume it with "
                        f"`orchestrator resume {run_id}`, or choose another --run-id"
                    )
                if not starting and not prior.values:
                    raise UsageError(f"no run with id {run_id} in {self.home}")
                if prior.interrupts and graph_input is None:
                    waiting = waiting_for(prior.interrupts)[0]
                    raise UsageError(
                        f"run {run_id} is waiting for plan approval: give a decision "
                        "(approve, edit or abort)"
                        if waiting == "awaiting_approval"
                        else f"run {run_id} is waiting for input: give the answer"
                    )
                if isinstance(graph_input, Command) and not prior.interrupts:
                    raise UsageError(f"run {run_id} is not waiting for a decision or input")
                tracker.state = dict(prior.values)
                task = tracker.state.get("task") or cast(dict[str, Any], graph_input)["task"]
                runlog.start(run_id, self.spec.name, self.spec.source, task)
                status: Status = "completed"
                error: ErrorInfo | None = None
                if starting and self.spec.graph is not None:
                    announce = plan_event(context, self.spec.graph)
                    tracker.see(announce)
                    yield announce
                try:
                    if starting or prior.next:
                        stream = graph.astream(
                            cast(Any, graph_input),
                            config,
                            context=context,
                            stream_mode=["custom", "values"],
                        )
                        async for mode, payload in cast(AsyncIterator[tuple[str, Any]], stream):
                            if mode == "values":
                                tracker.state = dict(payload)
                                continue
                            if isinstance(payload, CallFinished):
                                runlog.add_call(run_id, payload.call)
                            tracker.see(payload)
                            yield payload
                except BudgetExceededError as exc:
                    status, error = "budget_exceeded", ErrorInfo(exc.type, exc.message)
                except RunError as exc:
                    status, error = "failed", ErrorInfo(exc.type, exc.message)
                except BaseException as exc:
                    runlog.finish(run_id, "failed", f"{type(exc).__name__}: {exc}")
                    raise
                interrupts = (await graph.aget_state(config)).interrupts
                if status == "completed" and interrupts:
                    status, tracker.question = waiting_for(interrupts)
                elif status == "completed" and tracker.state.get("aborted"):
                    status, error = "failed", ErrorInfo("PlanRejected", ABORTED)
                runlog.finish(run_id, status, error.message if error else None)
                usage = Usage.from_calls(runlog.calls(run_id))
                yield RunFinished(tracker.result(run_id, status, error, usage))
        finally:
            await pool.aclose()


def _blocking(coro: Coroutine[Any, Any, RunResult], method: str) -> RunResult:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise UsageError(f"Workflow.{method}() was called inside a running event loop; use a{method}()")


async def last_result(events: AsyncIterator[Event]) -> RunResult:
    result: RunResult | None = None
    async for event in events:
        if isinstance(event, RunFinished):
            result = event.result
    assert result is not None, "a run's events always end with RunFinished"
    return result
