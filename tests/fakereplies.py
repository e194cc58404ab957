"""What the fake OpenAI server says: scripted behaviours, schema checks, bodies and SSE events.

``fakeserver.py`` runs the HTTP side and re-exports the public names defined here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import best_match

SCHEMA_PATH = Path(__file__).with_name("chat-completions.schema.json")
TraceStyle = Literal["reasoning_content", "reasoning", "think", "lone_think"]
TRACE_STYLES: frozenset[str | None] = frozenset(
    {None, "reasoning_content", "reasoning", "think", "lone_think"}
)
Latency = float | Callable[[dict[str, Any]], float]
StreamClose = Literal["end", "eof", "drop"]

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
TOOL_CALL = {
    "id": "call_fake0001",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"q": "x"}'},
}


@dataclass(frozen=True)
class Fault:
    """A failing response. ``delay`` (seconds) is slept first and combines with the rest.

    ``drop``: close the socket without a response. ``malformed``: HTTP 200 whose body is not JSON
    (Content-Type text/html unless ``headers`` override it). ``trickle``: HTTP 200 headers, then
    filler every ``trickle`` seconds until the client goes away or the server stops (an SSE
    comment for a streamed request, a space - valid leading JSON whitespace - otherwise): the
    response never completes, yet no single read ever waits long. Otherwise: HTTP ``status``
    with ``headers`` as given and an OpenAI-style error body (or ``body``: dict → JSON, str →
    text); ``status=200`` gives a 200 whose body is an error object, not a completion.
    """

    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False
    malformed: bool = False
    delay: float = 0.0
    trickle: float = 0.0


@dataclass(frozen=True)
class Reply:
    """A successful completion; every field left None takes the default.

    ``reasoning`` replaces the trace text (``""``: no trace, so ``content`` is sent verbatim even
    for <think> styles); it uses the model's trace style, or ``reasoning_content`` if it has none.

    Misbehaving servers, all off by default:

    - ``content_parts``: content as a list of text parts (``[{"type": "text", "text": ...}]``),
      in the message and in every stream delta.
    - ``tool_calls``: ``content: null`` and one tool call; finish_reason ``tool_calls``.
    - ``usage=False``: no ``usage`` in the body, no usage chunk in a stream.
    - ``error``: a 200 whose body is ``{"error": error}``; in a stream, an SSE event
      ``data: {"error": ...}`` after ``cut_after`` content chunks (default none), then [DONE].
    - ``cut_after`` (stream): only this many content chunks; no finish chunk, no usage chunk.
    - ``done=False`` (stream): no ``data: [DONE]``.
    - ``close`` (stream): how the body ends. ``end``: the last chunk of a chunked body (a
      complete HTTP message); ``eof``: no chunked framing, the body ends when the server closes
      the connection (also complete, to HTTP); ``drop``: the socket is shut mid-body.
    - ``byte_delay``: seconds between bytes of a non-streamed body (sent one byte at a time),
      or between the events of a stream.
    """

    content: str | None = None
    reasoning: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    latency: float | None = None
    content_parts: bool = False
    tool_calls: bool = False
    usage: bool = True
    error: Mapping[str, Any] | None = None
    cut_after: int | None = None
    done: bool = True
    close: StreamClose = "end"
    byte_delay: float = 0.0

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls else self.finish_reason

    @property
    def outcome(self) -> str:
        """How the request is recorded: ok, ok:<finish_reason>, error:200 or cut."""
        if self.error is not None:
            return "error:200"
        if self.cut_after is not None or not self.done or self.close == "drop":
            return "cut"
        return "ok" if self.finish == "stop" else f"ok:{self.finish}"


@dataclass
class ModelConfig:
    latency: Latency = 0.0
    reasoning: bool = False
    trace_style: TraceStyle | None = None
    reasoning_tokens: int = 50  # reported only when reasoning=True
    cached_tokens: int = 0
    omit_details: bool = False


@dataclass(frozen=True)
class Recorded:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names, e.g. headers["authorization"]
    started: float  # time.monotonic() at arrival
    ended: float  # time.monotonic() when the response was complete (or the socket dropped)
    is_plan: bool
    outcome: str  # "ok", "ok:length", "fault:429", "drop", "malformed", "client_gone",
    # "bad_json", "error:200", "cut", "trickle"


Behaviour = Fault | Reply


def _build_validators() -> dict[str, jsonschema.Draft202012Validator]:
    doc = json.loads(SCHEMA_PATH.read_text())
    return {
        name: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": doc["$defs"]})
        for name in doc["$defs"]
    }


_VALIDATORS = _build_validators()


def schema_errors_for(def_name: str, instance: Any) -> list[str]:
    """Validate ``instance`` against ``#/$defs/<def_name>``; [] if valid, else one message."""
    error = best_match(_VALIDATORS[def_name].iter_errors(instance))
    if error is None:
        return []
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    return [f"{def_name} at {where}: {error.message[:300]}"]


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def is_plan(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return False
    name = (fmt.get("json_schema") or {}).get("name")
    return isinstance(name, str) and name.lower() == "plan"


def error_body(status: int, message: str) -> dict[str, Any]:
    etype, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def chunks(text: str, words: int = 3) -> list[str]:
    tokens = re.findall(r"\s*\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


@dataclass(frozen=True)
class Composed:
    """One reply's text as sent: ``content`` (with any <think> tags) and a trace field."""

    content: str
    trace: str
    trace_field: str | None


def compose(answer: str, model: str, cfg: ModelConfig, reply: Reply) -> Composed:
    style = cfg.trace_style
    if reply.reasoning is not None:
        trace, style = reply.reasoning, style or "reasoning_content"
    else:
        trace = f"TRACE({model}): thinking about it" if style else ""
    if trace and style == "think":
        return Composed(f"<think>{trace}</think>{answer}", trace, None)
    if trace and style == "lone_think":
        return Composed(f"{trace}</think>{answer}", trace, None)
    return Composed(answer, trace, style if trace else None)


def usage_of(body: dict[str, Any], cfg: ModelConfig, reply: Reply, content: str) -> dict[str, Any]:
    chars = sum(
        len(text_of(m.get("content"))) for m in body.get("messages") or [] if isinstance(m, dict)
    )
    cached = reply.cached_tokens if reply.cached_tokens is not None else cfg.cached_tokens
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = max(1, chars // 4, cached)  # prompt_tokens includes the cached ones
    reasoning = reply.reasoning_tokens
    if reasoning is None:
        reasoning = cfg.reasoning_tokens if cfg.reasoning else 0
    completion = reply.completion_tokens
    if completion is None:
        completion = max(1, len(content) // 4) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if not cfg.omit_details:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def _content_value(text: str, reply: Reply) -> Any:
    return [{"type": "text", "text": text}] if reply.content_parts else text


def completion_body(
    head: dict[str, Any], text: Composed, reply: Reply, usage: dict[str, Any]
) -> dict[str, Any]:
    """A non-streamed response body: a chat completion, or ``{"error": ...}``."""
    if reply.error is not None:
        return {"error": dict(reply.error)}
    message: dict[str, Any] = {"role": "assistant", "refusal": None}
    if reply.tool_calls:
        message["content"] = None
        message["tool_calls"] = [TOOL_CALL]
    else:
        message["content"] = _content_value(text.content, reply)
    if text.trace_field:
        message[text.trace_field] = text.trace
    choice = {"index": 0, "message": message, "finish_reason": reply.finish, "logprobs": None}
    body = {**head, "object": "chat.completion", "choices": [choice]}
    if reply.usage:
        body["usage"] = usage
    return body


def stream_events(
    head: dict[str, Any], text: Composed, reply: Reply, usage: dict[str, Any] | None
) -> Iterator[str]:
    """The ``data:`` payloads of a streamed reply, in order (``usage`` None: not asked for)."""
    with_usage = usage is not None and reply.usage

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        obj: dict[str, Any] = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        if usage is not None:
            obj["usage"] = None
        return json.dumps(obj)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if text.trace_field:
        for piece in chunks(text.trace):
            yield chunk({"content": None, text.trace_field: piece})
    pieces = [] if reply.tool_calls else chunks(text.content)
    cut = reply.cut_after if reply.cut_after is not None else (0 if reply.error else None)
    for piece in pieces if cut is None else pieces[:cut]:
        yield chunk({"content": _content_value(piece, reply)})
    if reply.error is not None:
        yield json.dumps({"error": dict(reply.error)})
    elif cut is None:
        if reply.tool_calls:
            yield chunk({"content": None, "tool_calls": [{"index": 0, **TOOL_CALL}]})
        yield chunk({}, reply.finish)
        if with_usage:
            yield json.dumps(
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
    if reply.done:
        yield "[DONE]"
