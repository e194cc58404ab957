"""The HTTP plumbing of the fake OpenAI server: the threaded server and its request handler.

The handler only routes; what is said is decided by the ``App`` (``FakeOpenAI``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tests.fakereplies import error_body


class App(Protocol):
    def models(self) -> list[str]: ...

    def _handle_chat(self, h: Handler) -> None: ...

    def _handle_embeddings(self, h: Handler) -> None: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: App


class _Body:
    """Writes a response body as it is produced: chunked, or raw until the socket closes."""

    def __init__(self, h: Handler, *, chunked: bool, pause: float = 0.0) -> None:
        self._h = h
        self._chunked = chunked
        self._pause = pause

    def write(self, data: bytes) -> None:
        if self._pause:
            time.sleep(self._pause)
        if self._chunked:
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self._h.wfile.write(data)

    def end(self) -> None:
        if self._chunked:
            self._h.wfile.write(b"0\r\n\r\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive connection
    # holds each response ~40 ms waiting for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: Server

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

    def _start_body(
        self, content_type: str, *, framing: str = "chunked", pause: float = 0.0
    ) -> _Body:
        """200 headers for a body sent piece by piece; ``framing="eof"``: ends at close."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        if framing == "eof":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        return _Body(self, chunked=framing != "eof", pause=pause)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

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
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/chat/completions":
            self.server.fake._handle_chat(self)
        elif path == "/v1/embeddings":
            self.server.fake._handle_embeddings(self)
        else:
            self._read_body()
            self._not_found()

    def _not_found(self) -> None:
        msg = f"Unknown request URL: {self.command} {self.path}."
        body = error_body(404, msg)
        body["error"]["code"] = "unknown_url"
        self._send_json(404, body)
