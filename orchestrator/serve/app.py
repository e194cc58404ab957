"""The ASGI app: routes, the gate, error handling, and what happens at start and stop.

At start the app opens the state directory (held open while it serves, so runs share one
connection per database file) and looks for runs of its workflows that a previous server left
`interrupted`; with `resume_interrupted` it continues them. At stop it cancels the runs still
going, and each is recorded interrupted, to be continued the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import OrchestratorError, UsageError
from ..storage import RunRow, open_storage, orchestrator_home
from .auth import Guard
from .config import ServeConfig, Served
from .errors import SERVER_ERROR, ApiError, from_orchestrator, not_found
from .http import json_response
from .manager import CANCELLED, RunManager
from .metrics import Metrics
from .openai_api import chat_completions, list_models
from .runs_api import cancel_run, get_run, list_runs, resume_run, start_run
from .sse import run_events

log = logging.getLogger("orchestrator.serve")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _sdk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestratorError)
    if isinstance(exc, UsageError) and exc.message.startswith("no run with id"):
        return not_found(exc.message, code="run_not_found").response()
    return from_orchestrator(exc).response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found(f"no route {request.method} {request.url.path}").response()
    return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()


async def _bug(request: Request, exc: Exception) -> Response:
    # The message of an unexpected error may say anything: it goes to the log, not the client.
    log.exception("%s %s failed", request.method, request.url.path)
    return ApiError(500, f"internal error ({type(exc).__name__})", type=SERVER_ERROR).response()


async def _healthz(request: Request) -> Response:
    manager: RunManager = request.app.state.manager
    return json_response({"status": "ok", "runs_active": manager.active})


async def interrupted_runs(config: ServeConfig) -> list[tuple[Served, RunRow]]:
    """Runs of the served workflows left interrupted (not cancelled), oldest first."""
    async with open_storage(orchestrator_home()) as storage:
        rows = await storage.runs.recent_runs(100_000)
    found = []
    for row in reversed(rows):
        served = config.served_path(row.workflow_path)
        if served is not None and row.status == "interrupted" and row.error != CANCELLED:
            found.append((served, row))
    return found


async def _pick_up(config: ServeConfig, manager: RunManager) -> None:
    runs = await interrupted_runs(config)
    if not runs:
        return
    if not config.resume_interrupted:
        log.warning(
            "%d runs were interrupted (GET /runs lists them); POST /runs/ID/resume continues "
            "one, or restart with --resume-interrupted to continue them all",
            len(runs),
        )
        return
    for served, row in runs:
        try:
            manager.resume(served, row.run_id, None)
        except ApiError:
            log.warning("not resuming run %s: every run slot is taken", row.run_id)
            continue
        log.warning("resuming interrupted run %s (%s)", row.run_id, served.name)


def create_app(config: ServeConfig) -> Starlette:
    """The server as an ASGI app; run it with uvicorn (`orchestrator serve` does)."""
    metrics = Metrics()
    manager = RunManager(config, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_storage(orchestrator_home()):
            await _pick_up(config, manager)
            try:
                yield
            finally:
                await manager.shutdown()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/runs", start_run, methods=["POST"]),
        Route("/runs", list_runs, methods=["GET"]),
        Route("/runs/{run_id}", get_run, methods=["GET"]),
        Route("/runs/{run_id}", cancel_run, methods=["DELETE"]),
        Route("/runs/{run_id}/events", run_events, methods=["GET"]),
        Route("/runs/{run_id}/resume", resume_run, methods=["POST"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    guard = Middleware(
        Guard, api_key=config.api_key, max_body=config.max_body_bytes, metrics=metrics
    )
    app = Starlette(
        routes=routes,
        middleware=[guard],
        exception_handlers={
            ApiError: _api_error,
            OrchestratorError: _sdk_error,
            HTTPException: _http_error,
            Exception: _bug,
        },
        lifespan=lifespan,
    )
    app.state.config, app.state.manager, app.state.metrics = config, manager, metrics
    return app
