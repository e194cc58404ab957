"""The floors under what `orchestrator serve` adds, for serve.py: the same HTTP exchange with
less behind it.

- `python benchmarks/asgi_floor.py RECORDED_BODY_FILE`: the HTTP stack alone. A bare Starlette
  app on uvicorn, configured as `orchestrator serve` configures it (uvicorn's defaults: uvloop
  and httptools when installed, no access log), answers `POST /v1/chat/completions` by reading
  the body, parsing it as JSON, and streaming back a response `orchestrator serve` really sent
  (recorded by serve.py's client) in two writes: the first frame, then all the rest (serve
  itself writes at least that many). Its CPU per request is what the stack costs a streamed
  request before any of orchestrator's code.
- `python benchmarks/asgi_floor.py --replay WORKFLOW`: serve's own app (`create_app`: the gate,
  metrics, the run manager and its event buffers, the chunks, the disconnect watcher), with the
  workflow replaced by a stand-in that replays the events of one real run of it (recorded at
  start, against OPENAI_BASE_URL) instead of running it: no model call, no storage. Its CPU per
  request is the stack plus serve's own code.

Each prints "Uvicorn running on http://127.0.0.1:PORT" on stderr once it listens, as serve does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from orchestrator import Event, Workflow
from orchestrator.serve import ServeConfig, create_app
from orchestrator.serve.config import Served
from orchestrator.serve.http import ByteStream


def bare_app(recorded: bytes) -> Starlette:
    first, _, rest = recorded.partition(b"\n\n")
    frames = (first + b"\n\n", rest)

    async def chat(request: Request) -> ByteStream:
        body = json.loads(await request.body())
        assert body["stream"] is True

        async def stream() -> AsyncGenerator[bytes, None]:
            for frame in frames:
                yield frame

        return ByteStream(stream())  # serve's own sender: the frames as they come, no more

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


class Replayed:
    """Stands in for a `Workflow` behind serve: `astream` replays one recorded run's events,
    giving the event loop a turn between them as a real run does; the rest is the workflow's."""

    def __init__(self, workflow: Workflow, events: list[Event]) -> None:
        self.workflow, self.events = workflow, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.workflow, name)

    async def astream(self, task: str, **options: Any) -> AsyncIterator[Event]:
        for event in self.events:
            await asyncio.sleep(0)
            yield event


def replaying_app(path: str) -> Starlette:
    workflow = Workflow.from_yaml(path)

    async def record() -> list[Event]:
        with tempfile.TemporaryDirectory() as home:
            recorder = Workflow(workflow.spec, home=home)
            return [event async for event in recorder.astream("Record one run.")]

    events = asyncio.run(record())
    name = Path(path).stem
    served = Served(name, workflow=Replayed(workflow, events), path=Path(path))  # type: ignore[arg-type]
    return create_app(ServeConfig({name: served}, max_concurrent_runs=100_000))


def main() -> None:
    if sys.argv[1] == "--replay":
        app = replaying_app(sys.argv[2])
    else:
        app = bare_app(Path(sys.argv[1]).read_bytes())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=False, log_level="info")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
