"""The execute node: a scheduler that starts each subproblem the moment its dependencies finish.

Why not one `Send` per ready subproblem? LangGraph's supersteps are barriers: a subproblem whose
dependencies finished early would wait for the slowest unrelated branch. Here every subproblem
is a LangGraph `@task` (LangGraph's own push mechanism), called up front in plan order and
waiting inside for its dependencies, so:

- wall time follows the critical path (measured by benchmarks/critical_path.py);
- each finished subproblem is checkpointed as a pending write the moment it lands;
- call order is the plan order on every attempt, so a resumed run gets each finished
  subproblem back from the checkpoint instead of paying for it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, cast

from langgraph.func import task as langgraph_task
from langgraph.runtime import Runtime

from ..errors import DependencyFailed, OrchestratorError, RunError
from ..steps import Step, StepResult
from .context import RunContext
from .solve import solve
from .state import RunState

SolveOne = Callable[[str], Awaitable[dict[str, Any]]]
_solve_one: ContextVar[SolveOne] = ContextVar("orchestrator_solve_one")


async def _solve_step(sid: str) -> dict[str, Any]:
    """One step, as a LangGraph task: the running plan's `run_one`, found in the context the
    task was called from (LangGraph copies the caller's context into each task).

    A module-level function because LangGraph caches the runnable it wraps around a task
    function only for a function it can import by name; around `run_one` itself (a closure) it
    built a new one, with two `inspect.signature` calls, for every step of every run.
    """
    return await _solve_one.get()(sid)


# The task's name ("solve") is what LangGraph checkpoints a step's result under.
_solve_task = cast(SolveOne, langgraph_task(name="solve")(cast(Any, _solve_step)))


async def execute_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    plan = [Step.from_dict(d) for d in state["plan"]]
    results = await run_plan(runtime.context, state["task"], plan)
    return {"results": {sid: r.to_state() for sid, r in results.items()}}


async def run_plan(ctx: RunContext, task_text: str, plan: list[Step]) -> dict[str, StepResult]:
    """Solve every step, each as soon as its dependencies are done; results by id.

    Must run inside a LangGraph node: each step is a `@task`, checkpointed as it lands (as a
    JSON-able dict, so the checkpoint never depends on a class path).
    """
    loop = asyncio.get_running_loop()
    answers: dict[str, asyncio.Future[str]] = {s.id: loop.create_future() for s in plan}
    slots = asyncio.Semaphore(ctx.spec.limits.concurrency)
    by_id = {s.id: s for s in plan}

    async def run_one(sid: str) -> dict[str, Any]:
        step = by_id[sid]
        inputs = {dep: await answers[dep] for dep in step.depends_on}
        async with slots:
            return (await solve(ctx, task_text, step, inputs)).to_state()

    # Each task copies the context it is called from: set for those calls only (runs and plans
    # beside this one have their own).
    token = _solve_one.set(run_one)
    try:
        futures = {asyncio.ensure_future(_solve_task(step.id)): step.id for step in plan}
    finally:
        _solve_one.reset(token)
    results: dict[str, StepResult] = {}
    first_error: BaseException | None = None
    pending = set(futures)
    while pending:
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in finished:
            sid = futures[future]
            error = future.exception()
            if error is None:
                results[sid] = StepResult.from_state(future.result(), by_id[sid])
                answers[sid].set_result(results[sid].output)
                continue
            # Dependents fail fast; unrelated subproblems already running are paid for, so
            # they finish and are checkpointed for a resume.
            answers[sid].set_exception(DependencyFailed(f"dependency {sid} failed"))
            if first_error is None or isinstance(first_error, DependencyFailed):
                first_error = error
    for answer in answers.values():
        if answer.done() and not answer.cancelled():
            answer.exception()  # mark retrieved: dependents may never have awaited it
    if first_error is not None:
        if isinstance(first_error, OrchestratorError):
            raise first_error
        raise RunError(f"a subproblem failed: {first_error!r}") from first_error
    return results
