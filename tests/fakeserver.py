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
``Fault`` and ``Reply`` (in ``fakereplies.py``) also script misbehaving servers: errors inside a
200, streams cut off or dropped, bodies that trickle forever.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests import fakeembed
from tests.fakehttp import Handler, Server
from tests.fakereplies import (
    TRACE_STYLES,
    Behaviour,
    Composed,
    Fault,
    Latency,
    ModelConfig,
    Recorded,
    Reply,
    TraceStyle,
    completion_body,
    compose,
    error_body,
    is_plan,
    last_user,
    schema_errors_for,
    stream_events,
    usage_of,
)

__all__ = ["FakeOpenAI", "Fault", "ModelConfig", "Recorded", "Reply", "schema_errors_for"]


class FakeOpenAI:
    """Scriptable OpenAI-compatible server on 127.0.0.1, random port. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # ends responses that would otherwise never end
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
            self._stopping.clear()
            server = Server(("127.0.0.1", 0), Handler)
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
        self._stopping.set()
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
        self._settle()  # a request still being recorded would land after the reset
        with self._lock:
            self._queue: list[tuple[str | None, Behaviour]] = []
            self._records: dict[int, Recorded] = {}
            self._errors: list[str] = []
            self._models: dict[str, ModelConfig] = {}
            self._plan: dict[str, Any] | None = None
            self._billed: list[tuple[str, dict[str, Any]]] = []
            # (model, body) of each POST /v1/embeddings; fail one with enqueue(Fault, "embeddings")
            self.embedding_requests: list[tuple[str, dict[str, Any]]] = []
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
        self._settle()
        with self._lock:
            return [self._records[k] for k in sorted(self._records)]

    def _settle(self, limit: float = 2.0) -> None:
        """Wait (up to ``limit`` s) until no chat request is in flight."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.005)

    @property
    def billed(self) -> list[tuple[str, dict[str, Any]]]:
        """(model, usage) of every reply that reported its usage: what the server billed."""
        self._settle()
        with self._lock:
            return list(self._billed)

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

    def _note_errors(self, errors: Iterable[str]) -> None:
        with self._lock:
            self._errors.extend(errors)

    def _handle_embeddings(self, h: Handler) -> None:
        """POST /v1/embeddings (see ``tests.fakeembed``); a queued ``Fault`` for the model
        fails it. Recorded in ``embedding_requests``, not in ``requests``."""
        model = ""
        peeked = self._take_embedding_fault()
        body = fakeembed.respond(h, peeked)
        if body is not None:
            model = str(body.get("model", ""))
        with self._lock:
            self.embedding_requests.append((model, body or {}))

    def _take_embedding_fault(self) -> Fault | None:
        with self._lock:
            for i, (want, behaviour) in enumerate(self._queue):
                if want == "embeddings" and isinstance(behaviour, Fault):
                    del self._queue[i]
                    return behaviour
        return None

    def _handle_chat(self, h: Handler) -> None:
        started = time.monotonic()
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            seq = next(self._seq)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        body: dict[str, Any] = {}
        outcome = "ok"
        try:
            raw = h._read_body()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                self._note_errors([f"request body is not a JSON object: {raw[:80]!r}"])
                outcome = "bad_json"
                h._send_json(400, error_body(400, "We could not parse the JSON body."))
                return
            body = parsed
            outcome = self._respond(h, body)
        except (BrokenPipeError, ConnectionResetError):
            outcome = "client_gone"
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1
                self._records[seq] = Recorded(
                    str(body.get("model", "")),
                    body,
                    headers,
                    started,
                    time.monotonic(),
                    is_plan(body),
                    outcome,
                )

    def _respond(self, h: Handler, body: dict[str, Any]) -> str:
        cfg = self.model_config(str(body.get("model", "")))
        errors = self._validate(body, cfg)
        if errors:
            self._note_errors(errors)
            if self.reject_invalid:
                h._send_json(400, error_body(400, "; ".join(errors)))
                return "fault:400"
        behaviour = self._take(str(body.get("model", "")))
        if behaviour is None and self.responder is not None:
            behaviour = self.responder(body)
        if isinstance(behaviour, Fault):
            return self._fault(h, behaviour, stream=bool(body.get("stream")))
        return self._reply(h, body, cfg, behaviour or Reply())

    def _fault(self, h: Handler, fault: Fault, *, stream: bool) -> str:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            h._drop()
            return "drop"
        if fault.trickle:
            return self._trickle(h, fault.trickle, stream=stream)
        if fault.malformed:
            headers = {"Content-Type": "text/html", **fault.headers}
            h._send(200, b"<html>upstream hiccup", headers)
            return "malformed"
        if fault.body is None:
            payload = json.dumps(error_body(fault.status, f"fake fault {fault.status}")).encode()
        elif isinstance(fault.body, str | bytes):
            payload = fault.body.encode() if isinstance(fault.body, str) else fault.body
        else:
            payload = json.dumps(fault.body).encode()
        h._send(fault.status, payload, fault.headers)
        return f"fault:{fault.status}"

    def _trickle(self, h: Handler, interval: float, *, stream: bool) -> str:
        """Filler every ``interval`` s until the client hangs up or the server stops."""
        kind = "text/event-stream; charset=utf-8" if stream else "application/json"
        out = h._start_body(kind)
        filler = b": keep-alive\n\n" if stream else b" "
        try:
            while not self._stopping.wait(interval):
                out.write(filler)
        except OSError:
            pass  # the client gave up, which is the point
        h.close_connection = True
        return "trickle"

    def _answer(self, body: dict[str, Any], reply: Reply) -> str:
        model = str(body.get("model", ""))
        if reply.content is not None:
            return reply.content
        if is_plan(body):
            with self._lock:
                plan = self._plan
            if plan is None:
                task = last_user(body)[:200]
                plan = {
                    "subproblems": [
                        {"id": "s1", "kind": "generate", "task": task, "depends_on": []}
                    ]
                }
            return json.dumps(plan)
        return f"[{model}] answer: " + last_user(body)[:60]

    def _reply(self, h: Handler, body: dict[str, Any], cfg: ModelConfig, reply: Reply) -> str:
        model = str(body.get("model", ""))
        if reply.latency is not None:
            delay = reply.latency
        elif is_plan(body) and self.plan_latency is not None:
            delay = self.plan_latency
        else:
            delay = cfg.latency(body) if callable(cfg.latency) else cfg.latency
        if delay > 0:
            time.sleep(delay)
        text = compose(self._answer(body, reply), model, cfg, reply)
        usage = usage_of(body, cfg, reply, text.content)
        if reply.usage and reply.outcome.startswith("ok"):
            with self._lock:
                self._billed.append((model, usage))
        head = {"id": f"chatcmpl-fake{next(self._ids):06d}", "created": int(time.time())}
        head["model"] = model
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(h, head, text, reply, usage if include_usage else None)
        elif reply.byte_delay:
            out = h._start_body("application/json", pause=reply.byte_delay)
            for byte in json.dumps(completion_body(head, text, reply, usage)).encode():
                out.write(bytes([byte]))
            out.end()
        else:
            h._send_json(200, completion_body(head, text, reply, usage))
        return reply.outcome

    def _stream(
        self,
        h: Handler,
        head: dict[str, Any],
        text: Composed,
        reply: Reply,
        usage: dict[str, Any] | None,
    ) -> None:
        framing = "eof" if reply.close == "eof" else "chunked"
        out = h._start_body(
            "text/event-stream; charset=utf-8", framing=framing, pause=reply.byte_delay
        )
        said = False  # the scripted error event is out: a client may rightly hang up now
        try:
            for data in stream_events(head, text, reply, usage):
                out.write(f"data: {data}\n\n".encode())
                said = said or data.startswith('{"error":')
            if reply.close == "drop":
                h._drop()  # mid-body: the chunked body never gets its last chunk
            elif reply.close == "end":
                out.end()
            # "eof": the handler closes the connection after this response (close_connection)
        except OSError:
            if not said:
                raise
            h.close_connection = True
