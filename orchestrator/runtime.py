"""`Workflow`: the SDK's entry point. Async at its core; `run` wraps `arun`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from langgraph.graph.state import CompiledStateGraph

from .batch import Batch, BatchTask, TaskResult, as_tasks
from .diagram import mermaid
from .errors import UsageError
from .events import Event, RunFinished
from .graph.build import build_graph
from .graph.context import RunContext
from .models.base import ChatModel
from .policyspec import BUILTIN_POLICIES
from .result import RunResult
from .resume import Decision
from .run import RunSetup, check_run_id, inspect_run, new_run_id, stream_run
from .runnable import WorkflowRunnable
from .spec import WorkflowSpec
from .specload import load_workflow
from .storage import orchestrator_home
from .tracing import TracingOption, check_option

T = TypeVar("T")


class Workflow:
    """A workflow spec, ready to run tasks.

    `models` replaces the model behind any profile by name (for tests — see
    `orchestrator.testing` — or any backend that implements `ChatModel`); the rest are
    connected from the spec when a run starts. Either way each call is priced, budgeted and
    recorded the same way. `functions` registers Python callables by name for the graph's
    `python` nodes (`function: name`): registering is the application's opt-in, so no
    `allow_python` entry is needed for them. `home` overrides `ORCHESTRATOR_HOME`. `cache`
    turns the response cache on for every profile (as `cache: true` does for one): a request
    identical to one answered before is answered from `home`'s cache.sqlite, at no cost.
    `policy` names a policy every step follows, whatever the workflow says (as an evaluation
    compares them); `cache_salt` keeps this workflow's cached answers apart from those of
    otherwise identical requests (an evaluation's repeats are drawn anew).
    `tracing` sends each run's OpenTelemetry spans (needs the `otel` extra): None traces when
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set, `True` always (to the application's tracer provider
    if it set one), a string is an OTLP/HTTP endpoint, a `TracerProvider` is used as given;
    `False` never.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        models: Mapping[str, ChatModel] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        home: str | os.PathLike[str] | None = None,
        cache: bool = False,
        policy: str | None = None,
        cache_salt: str = "",
        tracing: TracingOption = None,
    ) -> None:
        self.spec = spec
        self.tracing = check_option(tracing)
        self.cache = cache
        self.cache_salt = cache_salt
        known = {*BUILTIN_POLICIES, *spec.policies}
        if policy is not None and policy not in known:
            raise UsageError(f"unknown policy {policy!r}; known: {', '.join(sorted(known))}")
        self.policy = policy
        self.functions = dict(functions or {})
        self._models = dict(models or {})
        unknown = self._models.keys() - spec.models.keys()
        if unknown:
            raise UsageError(f"models given for unknown profiles: {', '.join(sorted(unknown))}")
        self._home = Path(home) if home is not None else None
        self._graph: CompiledStateGraph[Any, RunContext, Any, Any] | None = None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **kwargs: Any) -> Workflow:
        return cls(load_workflow(path), **kwargs)

    def __repr__(self) -> str:
        return f"Workflow({self.spec.name!r})"

    @property
    def home(self) -> Path:
        """Where runs are stored: `home`, else $ORCHESTRATOR_HOME, else ~/.orchestrator."""
        return self._home or orchestrator_home()

    def mermaid(self) -> str:
        return mermaid(self.spec)

    def as_runnable(self, *, result: bool = False) -> WorkflowRunnable:
        """This workflow as a LangChain Runnable (LCEL chains, LangGraph nodes): a task in, the
        answer's text out (or the whole `RunResult`, with `result`); see `WorkflowRunnable`."""
        return WorkflowRunnable(self, result=result)

    def _setup(self) -> RunSetup:
        if self._graph is None:
            self._graph = build_graph(self.spec)
        return RunSetup(
            self.spec,
            self._models,
            self.functions,
            self.home,
            self._graph,
            policy=self.policy,
            cache=self.cache,
            cache_salt=self.cache_salt,
            tracing=self.tracing,
        )

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
        continue it with `aresume(run_id, Approve())` (or `Edit(plan)`, `Abort()`).
        """
        start = self.start_state(task, approve_plan=approve_plan)
        run_id = check_run_id(run_id) if run_id is not None else new_run_id()
        async for event in stream_run(self._setup(), run_id, start=start):
            yield event

    def start_state(self, task: str, *, approve_plan: bool = False) -> dict[str, Any]:
        """The graph's input for a new run of `task` (checked: not empty)."""
        if not task or not task.strip():
            raise UsageError("the task is empty: give some input text")
        if self.spec.graph is None:
            return {"task": task, "approve_plan": approve_plan}
        if approve_plan:
            raise UsageError(
                "approve_plan applies to the default pipeline; a custom graph asks people "
                "with a human node"
            )
        return {**self.spec.graph.state, "task": task}

    def batch(
        self,
        tasks: Iterable[str | BatchTask | Mapping[str, Any]],
        *,
        concurrency: int = 4,
        budget_usd: float | None = None,
        out: str | os.PathLike[str] | None = None,
    ) -> list[TaskResult]:
        """Run many tasks (blocking); see `abatch`."""
        coro = self.abatch(tasks, concurrency=concurrency, budget_usd=budget_usd, out=out)
        return _blocking(coro, "batch")

    async def abatch(
        self,
        tasks: Iterable[str | BatchTask | Mapping[str, Any]],
        *,
        concurrency: int = 4,
        budget_usd: float | None = None,
        out: str | os.PathLike[str] | None = None,
    ) -> list[TaskResult]:
        """Run tasks (texts, `BatchTask`s or {"id", "input"}), `concurrency` at a time, each a
        run of its own; results in the order of `tasks`. One task failing never stops the rest.

        `budget_usd` bounds the whole batch (each call's worst case must fit it). With `out`, a
        JSONL results file is appended as tasks finish, and calling again with the same file
        skips settled tasks and resumes unfinished ones from their checkpoints. Tasks left
        unstarted because the batch budget ran out are missing from the list.
        """
        batch = Batch(
            self,
            as_tasks(tasks),
            concurrency=concurrency,
            budget_usd=budget_usd,
            out=None if out is None else Path(out),
        )
        report = await batch.run()
        order = {t.id: i for i, t in enumerate(batch.tasks)}
        return sorted(report.results, key=lambda r: order[r.task.id])

    def resume(self, run_id: str, decision: Decision | None = None) -> RunResult:
        """Continue a run that failed, was stopped, or is paused (blocking)."""
        return _blocking(self.aresume(run_id, decision), "resume")

    async def aresume(self, run_id: str, decision: Decision | None = None) -> RunResult:
        return await last_result(self.astream_resume(run_id, decision))

    async def astream_resume(
        self, run_id: str, decision: Decision | None = None
    ) -> AsyncIterator[Event]:
        """Continue a run from its last checkpoint: no re-planning, and every subproblem that
        finished before is taken from the checkpoint instead of calling its model again.

        A run paused for plan approval needs `Approve()`, `Abort()` or `Edit(plan)` (validated
        like a planner's plan); a run paused at a human node needs `Answer(value)`.
        """
        async for event in stream_run(self._setup(), run_id, decision=decision):
            yield event

    async def ainspect(self, run_id: str) -> RunResult:
        """A run as it stands (plan, finished subproblems, cost), without running anything."""
        return await inspect_run(self._setup(), run_id)


def _blocking(coro: Coroutine[Any, Any, T], method: str) -> T:
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
