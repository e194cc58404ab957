"""The floor under what `orchestrator serve` adds: the same HTTP exchange with no workflow.

A bare Starlette app on uvicorn, configured as `orchestrator serve` configures it (uvicorn's
defaults: uvloop and httptools when installed, no access log), answers
`POST /v1/chat/completions` by reading the body, parsing it as JSON, and streaming back a
response `orchestrator serve` really sent (recorded by serve.py's client) in two writes: the
first frame, then all the rest (serve itself writes at least that many). Its CPU per request is
what the HTTP stack alone costs a streamed request, before any of orchestrator's own code:
serve adds at least this much over the SDK to every request.

Usage (serve.py starts it): python benchmarks/asgi_floor.py RECORDED_BODY_FILE
It prints "Uvicorn running on http://127.0.0.1:PORT" on stderr once it listens, as serve does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from orchestrator.serve.http import ByteStream


def create_app(recorded: bytes) -> Starlette:
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


def main() -> None:
    recorded = Path(sys.argv[1]).read_bytes()
    config = uvicorn.Config(
        create_app(recorded), host="127.0.0.1", port=0, access_log=False, log_level="info"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
