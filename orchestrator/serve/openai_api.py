"""`POST /v1/chat/completions` and `GET /v1/models`: workflows behind OpenAI's API.

`model` names a workflow (its file's stem); the last user message is the task. The run is an
ordinary run: it is listed by `GET /runs`, its id is in the `X-Orchestrator-Run-Id` header and
in `orchestrator.run_id`, and it takes one of the `--max-concurrent-runs` slots. A client that
disconnects stops its run (recorded interrupted; `POST /runs/{id}/resume` continues it).

A chat completion never waits for a person: plans run without approval. A custom graph that
asks a question (a `human` node) ends the request with 409 `run_paused`, naming the run to
answer with `POST /runs/{id}/resume`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable, Iterator

from starlette.requests import Request
from starlette.responses import Response

from ..events import AnswerRestarted, AnswerToken
from .chat import AnswerText, ChatRequest, Chunks, completion_body
from .config import ServeConfig, Served
from .errors import SERVER_ERROR, ApiError
from .http import ByteStream, json_response, read_body, watch_disconnect
from .manager import Frame, RunEntry, RunManager

RUN_HEADER = "X-Orchestrator-Run-Id"
# A run that failed because its model endpoint failed is the upstream's fault: 502.
UPSTREAM_FAILURES = {"ModelError", "TruncatedError", "StructuredOutputError", "EndpointError"}


def find_model(config: ServeConfig, name: str) -> Served:
    served = config.workflows.get(name)
    if served is None:
        raise ApiError(
            404,
            f"The model `{name}` does not exist: GET /v1/models lists the workflows served here",
            param="model",
            code="model_not_found",
        )
    return served


async def list_models(request: Request) -> Response:
    config: ServeConfig = request.app.state.config
    data = [
        {
            "id": name,
            "object": "model",
            "created": int(served.path.stat().st_mtime),
            "owned_by": "orchestrator",
            "description": served.workflow.spec.description or "",
        }
        for name, served in config.workflows.items()
    ]
    return json_response({"object": "list", "data": data})


def run_failure(entry: RunEntry) -> ApiError | None:
    """Why a chat completion's run gave no answer (None: it completed)."""
    result, run_id = entry.result, entry.run_id
    if entry.error is not None:
        return entry.error
    if entry.cancel_requested or result is None:
        return ApiError(500, f"run {run_id} was cancelled", type=SERVER_ERROR, code="cancelled")
    if result.status == "completed":
        return None
    if result.status in ("awaiting_approval", "awaiting_input"):
        what = f"input ({result.question})" if result.question else "a decision"
        return ApiError(
            409,
            f"run {run_id} is waiting for {what}: give it with POST /runs/{run_id}/resume "
            f"and follow GET /runs/{run_id}/events",
            code="run_paused",
        )
    error = result.error
    message = f"run {run_id} ended {result.status}: {error.message if error else 'no answer'}"
    message += f"; GET /runs/{run_id} shows what finished, POST /runs/{run_id}/resume continues it"
    status = 502 if error and error.type in UPSTREAM_FAILURES else 500
    return ApiError(status, message, type=SERVER_ERROR, code=result.status)


async def chat_completions(request: Request) -> Response:
    config: ServeConfig = request.app.state.config
    manager: RunManager = request.app.state.manager
    body = await read_body(request, ChatRequest)
    served = find_model(config, body.model)
    entry = manager.start(served, body.task())
    gone = functools.partial(manager.cancel_nowait, entry)
    watcher = watch_disconnect(request, gone)
    headers = {RUN_HEADER: entry.run_id}
    if body.stream:
        chunks = Chunks(entry.run_id, body.model, body.include_usage)
        stream = _stream(entry, chunks, watcher, gone)
        return ByteStream(stream, headers=headers)
    try:
        await entry.finished()
    finally:
        watcher.cancel()
    failure = run_failure(entry)
    if failure is not None:
        failure.headers.update(headers)
        raise failure
    assert entry.result is not None
    return json_response(completion_body(entry.result, body.model), headers=headers)


async def _stream(
    entry: RunEntry, chunks: Chunks, watcher: asyncio.Task[None], gone: Callable[[], None]
) -> AsyncGenerator[bytes, None]:
    text, complete = AnswerText(), False
    try:
        yield chunks.role()
        async for batch in entry.batches():
            out = b"".join(_answer_chunks(batch, text, chunks))
            if out:
                yield out
        complete = True  # the run ended: what is left to send is about it, not a cut-off
        failure = run_failure(entry)
        if failure is not None:
            yield chunks.error(failure)
            return
        result = entry.result
        assert result is not None  # completed: set
        rest = text.rest(result.output)
        # A rest: an answer that was not streamed token by token (a custom graph's).
        end = [chunks.content(rest)] if rest else []
        end.append(chunks.finish(result))
        if chunks.include_usage:
            end.append(chunks.usage(result))
        yield b"".join([*end, chunks.DONE])
    finally:
        watcher.cancel()
        if not complete:  # the response was cut off (the client went away): stop the run
            gone()


def _answer_chunks(batch: list[Frame], text: AnswerText, chunks: Chunks) -> Iterator[bytes]:
    for frame in batch:
        if isinstance(frame, AnswerToken):
            diverged, piece = text.token(frame.text)
            if diverged:
                yield chunks.restarted()
            if piece:
                yield chunks.content(piece)
        elif isinstance(frame, AnswerRestarted):
            text.restart()
