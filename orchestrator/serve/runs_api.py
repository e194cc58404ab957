"""The runs API, for runs too long to hold a request open for:

    POST   /runs               {workflow, input, approve_plan?}  -> 202 {id, ...} at once
    GET    /runs               the served workflows' runs, newest first (`?limit=50`)
    GET    /runs/{id}          status, plan and subproblems so far, usage so far
    GET    /runs/{id}/events   SSE of the typed events, resumable with Last-Event-ID
    POST   /runs/{id}/resume   {decision?: approve|edit|abort|answer, plan?, answer?}
    DELETE /runs/{id}          cancel (200; 202 while it stops): what finished stays checkpointed

A run's `status` is the run log's (`running`, `completed`, `failed`, `budget_exceeded`,
`awaiting_approval`, `awaiting_input`, `interrupted`) or `cancelled`. The rest of a run's body
is `RunResult`'s `--json` shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from ..errors import UsageError
from ..events import PlanReady, SubproblemFinished, SubproblemStarted
from ..graph.review import validate_edit
from ..resume import Abort, Answer, Approve, Decision, Edit
from ..storage import RunRow, open_storage, orchestrator_home
from .config import ServeConfig, Served
from .errors import ApiError, from_orchestrator, not_found
from .eventjson import result_json
from .http import json_response, read_body
from .manager import CANCELLED, RunEntry, RunManager

PAUSED = ("awaiting_approval", "awaiting_input")


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow: str
    input: str
    approve_plan: bool = False


class ResumeRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "edit", "abort", "answer"] | None = None
    plan: list[dict[str, Any]] | None = None
    answer: Any = None


def _state(request: Request) -> tuple[ServeConfig, RunManager]:
    return request.app.state.config, request.app.state.manager


def serve_status(row: RunRow | None, entry: RunEntry | None) -> str:
    if entry is not None and entry.running:
        return "running"
    if row is None:
        return entry.result.status if entry and entry.result else "failed"
    if row.status == "interrupted" and row.error == CANCELLED:
        return "cancelled"
    return row.status


async def _row(run_id: str) -> RunRow | None:
    async with open_storage(orchestrator_home()) as storage:
        return await storage.runs.get_run(run_id)


async def find_run(request: Request, run_id: str) -> tuple[Served, RunRow | None, RunEntry | None]:
    config, manager = _state(request)
    entry, row = manager.entry(run_id), await _row(run_id)
    served = entry.served if entry else config.served_path(row.workflow_path if row else None)
    if served is None:
        raise not_found(f"no run with id {run_id} of a workflow served here", code="run_not_found")
    return served, row, entry


def summary(
    run_id: str, served: Served, row: RunRow | None, entry: RunEntry | None
) -> dict[str, Any]:
    return {
        "id": run_id,
        "object": "run",
        "workflow": served.name,
        "status": serve_status(row, entry),
        "task": row.task if row else None,
        "cost_usd": round(row.cost_usd, 8) if row else 0.0,
        "created_at": row.created_at if row else None,
        "updated_at": row.updated_at if row else None,
    }


async def detail(
    run_id: str, served: Served, row: RunRow | None, entry: RunEntry | None
) -> dict[str, Any]:
    body = summary(run_id, served, row, entry)
    try:
        result = await served.workflow.ainspect(run_id)
    except UsageError:  # just started: nothing checkpointed yet
        body.update(output="", subproblems=[], usage=None, error=None)
    else:
        body.update({k: v for k, v in result_json(result).items() if k not in ("run_id", "status")})
        body["cost_usd"] = round(result.usage.cost_usd, 8)
    if body["status"] == "running":
        body["error"] = None  # the run log's "unfinished" is not an error yet
    if entry is not None and body["status"] != "completed":
        body["subproblems"] = live_steps(entry, body["subproblems"])
    elif entry is not None and entry.error is not None and row is None:
        body["error"] = {"type": entry.error.code, "message": entry.error.message}
    return body


def live_steps(entry: RunEntry, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The subproblems of a run this process ran, as its events tell: the checkpoint holds each
    finished step at once, but its state shows them only when the whole stage has finished."""
    steps = {s["id"]: s for s in stored}
    for frame in entry.frames:
        if isinstance(frame, PlanReady) and not stored:
            steps.update((s.id, s.to_dict()) for s in frame.subproblems)
        elif isinstance(frame, SubproblemStarted) and frame.step.id in steps:
            steps[frame.step.id] = {**steps[frame.step.id], "status": "running"}
        elif isinstance(frame, SubproblemFinished):
            steps[frame.result.id] = frame.result.to_dict()
    return list(steps.values())


async def start_run(request: Request) -> Response:
    config, manager = _state(request)
    body = await read_body(request, StartRun)
    served = config.workflows.get(body.workflow)
    if served is None:
        raise not_found(
            f"no workflow {body.workflow!r} is served here: GET /v1/models lists them",
            param="workflow",
            code="model_not_found",
        )
    if not body.input.strip():
        raise ApiError(400, "input is empty: give the task as text", param="input")
    if body.approve_plan and served.workflow.spec.graph is not None:
        raise ApiError(
            400,
            "approve_plan applies to the default pipeline; a custom graph asks with a human node",
            param="approve_plan",
        )
    entry = manager.start(served, body.input, approve_plan=body.approve_plan)
    run_id = entry.run_id
    data = {**summary(run_id, served, None, entry), "events": f"/runs/{run_id}/events"}
    return json_response(data, 202, headers={"Location": f"/runs/{run_id}"})


async def list_runs(request: Request) -> Response:
    config, manager = _state(request)
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "limit must be a whole number", param="limit") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit must be between 1 and 1000", param="limit")
    async with open_storage(orchestrator_home()) as storage:
        rows = await storage.runs.recent_runs(limit * 4)  # some are other workflows' runs
    listed: list[dict[str, Any]] = []
    seen = set()
    for row in rows:
        served = config.served_path(row.workflow_path)
        if served is not None and len(listed) < limit:
            listed.append(summary(row.run_id, served, row, manager.entry(row.run_id)))
            seen.add(row.run_id)
    fresh = [e for e in manager.entries.values() if e.running and e.run_id not in seen]
    listed[:0] = [summary(e.run_id, e.served, None, e) for e in reversed(fresh)]
    return json_response({"object": "list", "data": listed[:limit]})


async def get_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    served, row, entry = await find_run(request, run_id)
    return json_response(await detail(run_id, served, row, entry))


async def cancel_run(request: Request) -> Response:
    _, manager = _state(request)
    run_id = request.path_params["run_id"]
    served, row, entry = await find_run(request, run_id)
    if entry is None or not entry.running:
        status = serve_status(row, entry)
        raise ApiError(
            409, f"run {run_id} is not running here (it is {status})", code="not_running"
        )
    await manager.cancel(entry)
    # 202: still stopping (a run making its first call stops when that call returns).
    code = 202 if entry.running else 200
    return json_response(await detail(run_id, served, await _row(run_id), entry), code)


def decision_of(body: ResumeRun, served: Served) -> Decision | None:
    kind = body.decision or ("answer" if body.answer is not None else None)
    if kind == "approve":
        return Approve()
    if kind == "abort":
        return Abort()
    if kind == "answer":
        return Answer(body.answer)
    if kind == "edit":
        if body.plan is None:
            raise ApiError(400, "an edit needs the plan to run: give plan", param="plan")
        try:
            steps = validate_edit(body.plan, served.workflow.spec.limits.max_subproblems)
        except UsageError as exc:
            raise ApiError(400, exc.message, param="plan") from None
        return Edit(steps)
    return None


async def resume_run(request: Request) -> Response:
    _, manager = _state(request)
    run_id = request.path_params["run_id"]
    body = await read_body(request, ResumeRun)
    served, row, entry = await find_run(request, run_id)
    decision = decision_of(body, served)
    status = serve_status(row, entry)
    if status == "running":
        raise ApiError(409, f"run {run_id} is running already", code="run_busy")
    if status == "completed":
        raise ApiError(409, f"run {run_id} is completed: nothing to continue", code="completed")
    _check_decision(run_id, status, decision)
    try:
        entry = manager.resume(served, run_id, decision)
    except UsageError as exc:
        raise from_orchestrator(exc) from None
    data = {**summary(run_id, served, row, entry), "events": f"/runs/{run_id}/events"}
    return json_response(data, 202, headers={"Location": f"/runs/{run_id}"})


def _check_decision(run_id: str, status: str, decision: Decision | None) -> None:
    """Refuse, before anything runs, a decision that does not answer what the run waits for."""
    if status == "awaiting_input" and not isinstance(decision, Answer):
        raise ApiError(400, f"run {run_id} is waiting for input: give answer", param="answer")
    if status == "awaiting_approval" and not isinstance(decision, Approve | Edit | Abort):
        raise ApiError(
            400,
            f"run {run_id} is waiting for plan approval: give decision approve, edit or abort",
            param="decision",
        )
    if status not in PAUSED and decision is not None:
        raise ApiError(
            400,
            f"run {run_id} is not waiting for a decision ({status}): resume it with no decision",
            param="decision",
        )
