"""A real, scriptable OpenAI-compatible HTTP server for tests and benchmarks.

Stdlib ``http.server`` (one daemon thread per connection, HTTP/1.1 keep-alive) plus ``jsonschema``
to validate every request body against OpenAI's published schema. Usage::

    with FakeOpenAI() as server:
        server.configure_model("o4-mini", latency=0.4, reasoning=True)
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        server.enqueue(Fault(status=429, headers={"Retry-After": "0"}))
        ...
        assert server.schema_errors == []

Per request, in order: one-shot behaviours queued with ``enqueue`` (FIFO, first entry whose model
matches), then ``responder(body)``, then the default reply. A ``Fault`` sleeps only its own
``delay``; a ``Reply`` or the default sleeps ``Reply.latency``, else ``plan_latency`` for plan
requests (if not None), else the model's latency. Only POST /v1/chat/completions is recorded.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import best_match

__all__ = ["FakeOpenAI", "Fault", "ModelConfig", "Recorded", "Reply", "schema_errors_for"]

SCHEMA_PATH = Path(__file__).with_name("chat-completions.schema.json")
TraceStyle = Literal["reasoning_content", "reasoning", "think", "lone_think"]
TRACE_STYLES: frozenset[str | None] = frozenset(
    {None, "reasoning_content", "reasoning", "think", "lone_think"}
)
Latency = float | Callable[[dict[str, Any]], float]

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


@dataclass(frozen=True)
class Fault:
    """A failing response. ``delay`` (seconds) is slept first and combines with the rest.

    ``drop``: close the socket without a response. ``malformed``: HTTP 200 whose body is not JSON
    (Content-Type text/html unless ``headers`` override it). Otherwise: HTTP ``status`` with
    ``headers`` as given and an OpenAI-style error body (or ``body``: dict → JSON, str → text).
    """

    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False
    malformed: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class Reply:
    """A successful completion; every field left None takes the default.

    ``reasoning`` replaces the trace text (``""``: no trace, so ``content`` is sent verbatim even
    for <think> styles); it uses the model's trace style, or ``reasoning_content`` if it has none.
    """

    content: str | None = None
    reasoning: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    latency: float | None = None


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
    outcome: str  # "ok", "ok:length", "fault:429", "drop", "malformed", "client_gone", "bad_json"


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


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _is_plan(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return False
    name = (fmt.get("json_schema") or {}).get("name")
    return isinstance(name, str) and name.lower() == "plan"


def _error_body(status: int, message: str) -> dict[str, Any]:
    etype, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def _chunks(text: str, words: int = 3) -> list[str]:
    tokens = re.findall(r"\s*\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive connection
    # holds each response ~40 ms waiting for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        sent = {k.lower() for k in headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers or {})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": "fakeserver"}
                for name in self.server.fake.models()
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._not_found()

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") == "/v1/chat/completions":
            self.server.fake._handle_chat(self)
        else:
            self._read_body()
            self._not_found()

    def _not_found(self) -> None:
        msg = f"Unknown request URL: {self.command} {self.path}."
        body = _error_body(404, msg)
        body["error"]["code"] = "unknown_url"
        self._send_json(404, body)


class FakeOpenAI:
    """Scriptable OpenAI-compatible server on 127.0.0.1, random port. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._in_flight = 0
        self.plan_latency: float | None = None
        self.responder: Callable[[dict[str, Any]], Reply | None] | None = None
        self.reject_invalid = False  # True: schema-invalid bodies also get a 400, like OpenAI
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        if self._server is None:
            server = _Server(("127.0.0.1", 0), _Handler)
            server.fake = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"FakeOpenAI:{server.server_address[1]}",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ----------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._queue: list[tuple[str | None, Behaviour]] = []
            self._records: dict[int, Recorded] = {}
            self._errors: list[str] = []
            self._models: dict[str, ModelConfig] = {}
            self._plan: dict[str, Any] | None = None
            self.peak_in_flight = self._in_flight  # max simultaneous chat requests since reset
        self.responder = None
        self.plan_latency = None
        self.reject_invalid = False

    def configure_model(
        self,
        name: str,
        *,
        latency: Latency = 0.0,
        reasoning: bool = False,
        trace_style: TraceStyle | None = None,
        reasoning_tokens: int = 50,
        cached_tokens: int = 0,
        omit_details: bool = False,
    ) -> None:
        if trace_style not in TRACE_STYLES:
            raise ValueError(f"unknown trace_style {trace_style!r}")
        with self._lock:
            self._models[name] = ModelConfig(
                latency, reasoning, trace_style, reasoning_tokens, cached_tokens, omit_details
            )

    def model_config(self, name: str) -> ModelConfig:
        with self._lock:
            return self._models.get(name) or ModelConfig()

    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def set_plan(self, plan: dict[str, Any] | None) -> None:
        with self._lock:
            self._plan = plan

    def enqueue(self, behaviour: Behaviour, model: str | None = None) -> None:
        """Queue a one-shot behaviour for the next request to ``model`` (None: any model)."""
        with self._lock:
            self._queue.append((model, behaviour))

    @property
    def pending(self) -> int:
        """Queued behaviours not yet consumed."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[Recorded]:
        """Completed chat requests, in arrival order.

        A client can read its response a moment before the handler thread records it, so this
        waits (up to 2 s) for requests in flight to be recorded.
        """
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    break
            time.sleep(0.005)
        with self._lock:
            return [self._records[k] for k in sorted(self._records)]

    @property
    def schema_errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def clear_schema_errors(self) -> None:
        with self._lock:
            self._errors.clear()

    # -- request handling (runs in the handler thread) ------------------------------------------
    def _take(self, model: str) -> Behaviour | None:
        with self._lock:
            for i, (want, behaviour) in enumerate(self._queue):
                if want is None or want == model:
                    del self._queue[i]
                    return behaviour
        return None

    def _validate(self, body: Any, cfg: ModelConfig) -> list[str]:
        errors = schema_errors_for("CreateChatCompletionRequest", body)
        if cfg.reasoning and isinstance(body, dict):
            model = body.get("model")
            if "max_tokens" in body:
                errors.append(f"reasoning model {model} rejects max_tokens")
            for key in ("temperature", "top_p"):
                if key in body and body[key] != 1:
                    errors.append(f"reasoning model {model} rejects {key}={body[key]!r}")
        return errors

    def _handle_chat(self, h: _Handler) -> None:
        started = time.monotonic()
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            seq = next(self._seq)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        body: dict[str, Any] = {}
        model, is_plan, outcome = "", False, "ok"
        try:
            raw = h._read_body()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                with self._lock:
                    self._errors.append(f"request body is not a JSON object: {raw[:80]!r}")
                outcome = "bad_json"
                h._send_json(400, _error_body(400, "We could not parse the JSON body."))
                return
            body = parsed
            model = str(body.get("model", ""))
            cfg = self.model_config(model)
            is_plan = _is_plan(body)
            errors = self._validate(body, cfg)
            if errors:
                with self._lock:
                    self._errors.extend(errors)
                if self.reject_invalid:
                    outcome = "fault:400"
                    h._send_json(400, _error_body(400, "; ".join(errors)))
                    return
            behaviour = self._take(model)
            if behaviour is None and self.responder is not None:
                behaviour = self.responder(body)
            if isinstance(behaviour, Fault):
                outcome = self._fault(h, behaviour)
            else:
                outcome = self._reply(h, body, cfg, behaviour or Reply(), is_plan)
        except (BrokenPipeError, ConnectionResetError):
            outcome = "client_gone"
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1
                self._records[seq] = Recorded(
                    model, body, headers, started, time.monotonic(), is_plan, outcome
                )

    def _fault(self, h: _Handler, fault: Fault) -> str:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return "drop"
        if fault.malformed:
            headers = {"Content-Type": "text/html", **fault.headers}
            h._send(200, b"<html>upstream hiccup", headers)
            return "malformed"
        if fault.body is None:
            payload = json.dumps(_error_body(fault.status, f"fake fault {fault.status}")).encode()
        elif isinstance(fault.body, str | bytes):
            payload = fault.body.encode() if isinstance(fault.body, str) else fault.body
        else:
            payload = json.dumps(fault.body).encode()
        h._send(fault.status, payload, fault.headers)
        return f"fault:{fault.status}"

    def _reply(
        self, h: _Handler, body: dict[str, Any], cfg: ModelConfig, reply: Reply, is_plan: bool
    ) -> str:
        model = str(body.get("model", ""))
        if reply.latency is not None:
            delay = reply.latency
        elif is_plan and self.plan_latency is not None:
            delay = self.plan_latency
        else:
            delay = cfg.latency(body) if callable(cfg.latency) else cfg.latency
        if delay > 0:
            time.sleep(delay)

        if reply.content is not None:
            answer = reply.content
        elif is_plan:
            with self._lock:
                plan = self._plan
            if plan is None:
                task = _last_user(body)[:200]
                plan = {
                    "subproblems": [
                        {"id": "s1", "kind": "generate", "task": task, "depends_on": []}
                    ]
                }
            answer = json.dumps(plan)
        else:
            answer = f"[{model}] answer: " + _last_user(body)[:60]
        style = cfg.trace_style
        if reply.reasoning is not None:
            trace, style = reply.reasoning, style or "reasoning_content"
        else:
            trace = f"TRACE({model}): thinking about it" if style else ""
        content, trace_field = answer, None
        if trace and style == "think":
            content = f"<think>{trace}</think>{answer}"
        elif trace and style == "lone_think":
            content = f"{trace}</think>{answer}"
        elif trace:
            trace_field = style

        usage = self._usage(body, cfg, reply, content)
        cid = f"chatcmpl-fake{next(self._ids):06d}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(
                h,
                cid,
                created,
                model,
                content,
                trace,
                trace_field,
                reply.finish_reason,
                usage if include_usage else None,
            )
        else:
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
            if trace_field:
                message[trace_field] = trace
            h._send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": reply.finish_reason,
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                },
            )
        return "ok" if reply.finish_reason == "stop" else f"ok:{reply.finish_reason}"

    def _usage(
        self, body: dict[str, Any], cfg: ModelConfig, reply: Reply, content: str
    ) -> dict[str, Any]:
        chars = sum(
            len(_text_of(m.get("content")))
            for m in body.get("messages") or []
            if isinstance(m, dict)
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

    def _stream(
        self,
        h: _Handler,
        cid: str,
        created: int,
        model: str,
        content: str,
        trace: str,
        trace_field: str | None,
        finish_reason: str,
        usage: dict[str, Any] | None,
    ) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def emit(data: str) -> None:
            raw = f"data: {data}\n\n".encode()
            h.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
            if usage is not None:
                obj["usage"] = None
            emit(json.dumps(obj))

        chunk({"role": "assistant", "content": "", "refusal": None})
        if trace_field:
            for piece in _chunks(trace):
                chunk({"content": None, trace_field: piece})
        for piece in _chunks(content):
            chunk({"content": piece})
        chunk({}, finish_reason)
        if usage is not None:
            emit(
                json.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        emit("[DONE]")
        h.wfile.write(b"0\r\n\r\n")
