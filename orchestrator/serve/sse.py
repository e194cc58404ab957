"""`GET /runs/{id}/events`: a run's typed events as server-sent events.

Each event has `event:` (its type, see orchestrator/serve/eventjson.py), `data:` (its JSON) and
`id:` (`BOOT-N`: the N-th event of the run in this server process). A client that reconnects
with `Last-Event-ID` gets the events after that one. The stream ends when the run's attempt
ends (completed, failed, paused or cancelled); after `POST /runs/{id}/resume`, connect again
with the last id to follow the next attempt.

The events are kept in memory per run (the latest runs' only). For a run this process did not
run (it finished before a restart, or long ago), the stream is its state as it stands: one
`run_finished` event with the run's result and its `status` as `GET /runs/{id}` gives it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from .eventjson import event_json, result_json
from .manager import Frame, Note, RunEntry, RunManager
from .runs_api import find_run, serve_status

PING_S = 15  # a comment line this often keeps proxies from closing a quiet stream


def last_seen(header: str | None, boot: str) -> int:
    """The sequence number of `Last-Event-ID` if it is this process's, else 0 (from the start)."""
    if not header:
        return 0
    head, _, seq = header.strip().rpartition("-")
    return int(seq) if head == boot and seq.isdigit() else 0


def frame_json(frame: Frame) -> dict[str, object]:
    if isinstance(frame, Note):
        return {"type": frame.type, **frame.data}
    return event_json(frame)


async def _follow(entry: RunEntry, after: int, boot: str) -> AsyncIterator[ServerSentEvent]:
    async for seq, frame in entry.follow(after):
        data = frame_json(frame)
        yield ServerSentEvent(
            json.dumps(data, ensure_ascii=False), event=str(data["type"]), id=f"{boot}-{seq}"
        )


async def _snapshot(data: dict[str, object], boot: str) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(
        json.dumps(data, ensure_ascii=False), event="run_finished", id=f"{boot}-0"
    )


async def run_events(request: Request) -> Response:
    manager: RunManager = request.app.state.manager
    run_id = request.path_params["run_id"]
    served, row, entry = await find_run(request, run_id)
    after = last_seen(request.headers.get("last-event-id"), manager.boot)
    if entry is not None:
        events = _follow(entry, after, manager.boot)
    else:
        result = await served.workflow.ainspect(run_id)
        status = serve_status(row, None)  # `interrupted`, say, where the result says failed
        data: dict[str, object] = {"type": "run_finished", "status": status}
        data["result"] = result_json(result)
        events = _snapshot(data, manager.boot)
    return EventSourceResponse(events, ping=PING_S, headers={"Cache-Control": "no-store"})
