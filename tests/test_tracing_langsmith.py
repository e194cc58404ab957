"""LangSmith: with LANGSMITH_TRACING=true a run is one trace, LangGraph's node runs with each
model call beneath them as an LLM run carrying its token usage.

The real CLI runs in a subprocess (LangSmith reads its settings from the environment once per
process) against the scripted OpenAI server, with LANGSMITH_ENDPOINT pointing at a stand-in on
127.0.0.1 that records what the langsmith client posts (multipart, or JSON batches). The CLI
flushes the client before it exits, so when the process has ended every run has arrived.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeOpenAI

THINKER, WRITER = "o4-mini", "gpt-4o-mini"
SECRET = "sk-test-LANGSMITH-0000"
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "weigh the options", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "write it up", "depends_on": ["s1"]},
    ]
}
WORKFLOW = """
name: smith
models:
  thinker:
    model: o4-mini
    api_key: ${OPENAI_API_KEY}
    reasoning: true
    price: {input: 1.10, cached_input: 0.275, output: 4.40}
  writer:
    model: gpt-4o-mini
    price: {input: 0.15, output: 0.60}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""


class StandIn:
    """A LangSmith API stand-in: answers /info, records every run posted or patched."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.keys: set[str] = set()
        self.runs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, body: bytes = b"{}") -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self.reply()  # /info: no optional features, so plain multipart ingestion

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                owner.record(self.path, self.headers.get("Content-Type") or "", body)
                owner.keys.add(self.headers.get("x-api-key") or "")
                self.reply()

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, path: str, content_type: str, body: bytes) -> None:
        with self.lock:
            self.bodies.append(body)
            if path.startswith("/runs/multipart"):
                self._multipart(content_type, body)
            elif path.startswith("/runs/batch"):
                batch = json.loads(body)
                for run in [*batch.get("post", []), *batch.get("patch", [])]:
                    self.runs.setdefault(str(run["id"]), {}).update(run)
            elif path.startswith("/runs"):
                run = json.loads(body)
                run_id = str(run.get("id") or path.rsplit("/", 1)[-1])
                self.runs.setdefault(run_id, {}).update(run)

    def _multipart(self, content_type: str, body: bytes) -> None:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
        for part in message.iter_parts():
            # parts are named `post.ID`, `patch.ID`, or `post.ID.inputs` / `.outputs` / ...
            _, run_id, *field = str(part.get_param("name", header="content-disposition")).split(".")
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            data = json.loads(payload)
            run = self.runs.setdefault(run_id, {})
            if field:
                run[field[0]] = data
            else:
                run.update(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_run_is_one_langsmith_trace_with_llm_runs(
    fake_openai: FakeOpenAI, stand_in: StandIn, tmp_path: Path
) -> None:
    fake_openai.configure_model(
        THINKER,
        reasoning=True,
        reasoning_tokens=70,
        cached_tokens=20,
        trace_style="reasoning_content",
    )
    fake_openai.configure_model(WRITER)
    fake_openai.set_plan(PLAN)
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    foreign = ("OTEL_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env.update(
        LANGSMITH_TRACING="true",
        LANGSMITH_ENDPOINT=stand_in.url,
        LANGSMITH_API_KEY="ls-dummy-key",
        LANGSMITH_PROJECT="orchestrator-tests",
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY=SECRET,
        ORCHESTRATOR_HOME=str(tmp_path / "home"),
        ORCHESTRATOR_PLAIN="1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(path), "-i", "Pick one.", "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    runs = stand_in.runs

    assert stand_in.keys == {"ls-dummy-key"}
    assert not any(SECRET.encode() in body for body in stand_in.bodies)
    assert len({run["trace_id"] for run in runs.values()}) == 1
    [root] = [run for run in runs.values() if not run.get("parent_run_id")]
    assert root["name"] == "smith" and root["run_type"] == "chain"
    assert root["extra"]["metadata"]["orchestrator_run_id"] == result["run_id"]
    # LangSmith groups traces of one thread_id as a thread: every attempt of a run is in one
    assert root["extra"]["metadata"]["thread_id"] == result["run_id"]
    assert root["session_name"] == "orchestrator-tests"
    nodes = {run["name"]: run for run in runs.values() if run.get("parent_run_id") == root["id"]}
    assert {"plan", "review", "execute", "synthesize"} <= nodes.keys()

    llm = [run for run in runs.values() if run["run_type"] == "llm"]
    assert len(llm) == 4  # plan, s1, s2, synthesis
    # ...on every run of the trace, or a thread's filters and token sums miss it
    assert {run["extra"]["metadata"].get("thread_id") for run in runs.values()} == {
        result["run_id"]
    }
    under = sorted(runs[run["parent_run_id"]]["name"] for run in llm)
    assert under == ["plan", "solve", "solve", "synthesize"]
    for run in llm:
        parent = runs[run["parent_run_id"]]
        assert run["dotted_order"].startswith(parent["dotted_order"] + ".")
        assert when(parent["start_time"]) <= when(run["start_time"]) <= when(run["end_time"])
        assert when(run["end_time"]) <= when(parent["end_time"])
        if parent["name"] == "solve":
            assert runs[parent["parent_run_id"]]["name"] == "execute"

    # each profile's LLM runs add up to exactly what the run billed that profile
    for profile, billed in result["usage"]["by_profile"].items():
        mine = [r for r in llm if r["extra"]["metadata"]["orchestrator_profile"] == profile]
        assert len(mine) == billed["calls"]
        assert {r["extra"]["metadata"]["ls_model_name"] for r in mine} == {billed["model"]}
        usage = [r["outputs"]["usage_metadata"] for r in mine]
        assert sum(u["input_tokens"] for u in usage) == billed["input_tokens"]
        assert sum(u["output_tokens"] for u in usage) == billed["output_tokens"]
        reasoning = sum(u["output_token_details"]["reasoning"] for u in usage)
        assert reasoning == billed["reasoning_tokens"]
        cached = sum(u["input_token_details"]["cache_read"] for u in usage)
        assert cached == billed["cached_input_tokens"]
        assert sum(u["total_cost"] for u in usage) == pytest.approx(billed["cost_usd"])
    [thinking] = [r for r in llm if r["extra"]["metadata"]["orchestrator_profile"] == "thinker"]
    assert thinking["outputs"]["usage_metadata"]["output_token_details"]["reasoning"] == 70
    assert thinking["extra"]["metadata"]["ls_provider"] == "openai"

    # each LLM run carries the messages as the endpoint got them, and the answer it gave
    sent = [
        [{"role": m["role"], "content": m["content"]} for m in r.body["messages"]]
        for r in fake_openai.requests
    ]
    assert sorted(map(str, (run["inputs"]["messages"] for run in llm))) == sorted(map(str, sent))
    [synthesis] = [run for run in llm if run["inputs"]["purpose"] == "synthesize"]
    assert synthesis["outputs"]["choices"][0]["message"]["content"] == result["output"]
    trace = thinking["outputs"]["choices"][0]["message"].get("reasoning_content")
    assert trace and trace not in thinking["outputs"]["choices"][0]["message"]["content"]


SCRIPT = """
import tempfile
from langsmith import traceable
from orchestrator import Workflow, flush_traces, parse_workflow
from orchestrator.testing import TestModel

spec = parse_workflow('''
name: nested
models:
  writer: {model: write-model, price: {input: 1, output: 2}}
roles: {plan: writer, reason: writer, generate: writer, synthesize: writer}
''')
plan = [{"id": "s1", "kind": "generate", "task": "t", "depends_on": []}]
workflow = Workflow(spec, models={"writer": TestModel(plan=plan)}, home=tempfile.mkdtemp())

@traceable(name="my_app")
def app():
    return workflow.run("a task")

print(app().usage.by_profile["writer"].input_tokens)
flush_traces()
"""


def test_an_sdk_run_inside_traced_code_nests_under_it(stand_in: StandIn) -> None:
    foreign = ("OTEL_", "LANGSMITH_", "LANGCHAIN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env.update(
        LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=stand_in.url, LANGSMITH_API_KEY="ls-dummy"
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    runs = stand_in.runs
    [app] = [run for run in runs.values() if not run.get("parent_run_id")]
    assert app["name"] == "my_app"
    [workflow] = [run for run in runs.values() if run["name"] == "nested"]
    assert workflow["parent_run_id"] == app["id"]
    llm = [run for run in runs.values() if run["run_type"] == "llm"]
    assert sorted(runs[run["parent_run_id"]]["name"] for run in llm) == [
        "plan",
        "solve",
        "synthesize",
    ]
    total = sum(run["outputs"]["usage_metadata"]["input_tokens"] for run in llm)
    assert total == int(done.stdout)
