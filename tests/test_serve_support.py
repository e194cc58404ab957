"""Shared by the serve tests (no tests here): a workflow on the scripted server, and the app
served by a real uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from orchestrator.serve import ServeConfig, create_app, load_served

WORKFLOW = """
name: served
models:
  thinker: {model: think-model, reasoning: true, retries: 0, price: {input: 2, output: 8}}
  writer: {model: write-model, retries: 0, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""

PLAN = {
    "subproblems": [
        {"id": "fast1", "kind": "generate", "task": "quick part one", "depends_on": []},
        {"id": "slow", "kind": "reason", "task": "slow deep part", "depends_on": []},
        {"id": "last", "kind": "generate", "task": "final part", "depends_on": ["fast1", "slow"]},
    ]
}

KEY = "serve-secret-key-0123456789"


def write_workflow(directory: Path, name: str = "served", text: str = WORKFLOW) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening (and on which port)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.port = 0

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.servers:
            self.port = self.servers[0].sockets[0].getsockname()[1]
        self.ready.set()


@contextmanager
def serving(workflows: list[Path], **options: Any) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in a thread; yields its base URL."""
    config = ServeConfig(load_served([str(p) for p in workflows]), **options)
    server = _Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(30), "the server did not start"
    assert server.port, "the server could not listen"
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of each server-sent event of a streamed httpx response."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if "data" in fields:
                yield fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"])
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


def follow(base: str, run_id: str, last_id: str | None = None, **headers: str) -> list[Any]:
    """Every event of a run's current attempt: (id, event, data) until the stream ends."""
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    with httpx.stream("GET", f"{base}/runs/{run_id}/events", headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return list(sse_events(r))


def solve_calls(requests: list[Any], text: str) -> list[Any]:
    return [
        r
        for r in requests
        if "You solve one subproblem" in r.body["messages"][0]["content"]
        and text in r.body["messages"][-1]["content"].split("Your subproblem:")[-1]
    ]
