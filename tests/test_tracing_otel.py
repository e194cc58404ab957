"""OpenTelemetry spans of runs: run → node → subproblem → model call.

Runs go through the real openai wire to the scripted server (tests/fakeserver.py), and the spans
are read back from the SDK's in-memory exporter; one test sends them through the real OTLP/HTTP
exporter, from the real CLI, to a receiver on 127.0.0.1 that decodes the protobuf.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from orchestrator import (
    Approve,
    RunResult,
    UsageError,
    Workflow,
    load_workflow,
    parse_workflow,
)
from orchestrator.cli.main import main
from orchestrator.testing import TestModel
from orchestrator.tracing import RunTracer
from tests.fakeserver import FakeOpenAI, Fault

THINKER, WRITER = "o4-mini", "gpt-4o-mini"
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "weigh the options", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "list the options", "depends_on": []},
        {"id": "s3", "kind": "generate", "task": "write it up", "depends_on": ["s1", "s2"]},
    ]
}
TOLERANCE_NS = 2_000_000  # call times are wall clock plus a monotonic duration: allow 2 ms


def workflow_yaml(base_url: str, retries: int = 4, fallback: str = "") -> str:
    return f"""
name: traced
models:
  thinker:
    model: {THINKER}
    base_url: {base_url}
    api_key: sk-test-0000
    reasoning: true
    reasoning_effort: low
    retries: {retries}
    {f"fallback: {fallback}" if fallback else ""}
    price: {{input: 1.10, cached_input: 0.275, output: 4.40}}
  writer:
    model: {WRITER}
    base_url: {base_url}
    api_key: sk-test-0000
    price: {{input: 0.15, output: 0.60}}
roles: {{plan: writer, reason: thinker, generate: writer, synthesize: writer}}
"""


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.configure_model(THINKER, reasoning=True, reasoning_tokens=120, cached_tokens=40)
    fake_openai.configure_model(WRITER, cached_tokens=10)
    fake_openai.set_plan(PLAN)
    return fake_openai


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced(
    fake: FakeOpenAI,
    exporter: InMemorySpanExporter,
    home: Path,
    retries: int = 4,
    fallback: str = "",
) -> Workflow:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spec = parse_workflow(workflow_yaml(fake.base_url, retries, fallback))
    return Workflow(spec, home=home, tracing=provider)


class Spans:
    """A run's finished spans, by name and by parent."""

    def __init__(self, spans: tuple[ReadableSpan, ...]) -> None:
        self.all = spans
        self.by_id = {s.context.span_id: s for s in spans}

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id[span.parent.span_id] if span.parent is not None else None

    def calls(self) -> list[ReadableSpan]:
        return [s for s in self.all if s.name.startswith("chat ")]


def inside(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.start_time and child.end_time and parent.start_time and parent.end_time
    return (
        child.start_time >= parent.start_time - TOLERANCE_NS
        and child.end_time <= parent.end_time + TOLERANCE_NS
    )


def number(span: ReadableSpan, key: str) -> float:
    value = (span.attributes or {})[key]
    assert isinstance(value, int | float)
    return value


def usage_totals(result: RunResult) -> dict[str, int]:
    profiles = result.usage.by_profile.values()
    return {
        "gen_ai.usage.input_tokens": sum(p.input_tokens for p in profiles),
        "gen_ai.usage.output_tokens": sum(p.output_tokens for p in profiles),
        "orchestrator.usage.reasoning_tokens": sum(p.reasoning_tokens for p in profiles),
        "orchestrator.usage.cached_input_tokens": sum(p.cached_input_tokens for p in profiles),
    }


async def test_a_run_is_one_trace_of_nodes_subproblems_and_calls(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    fake.configure_model(THINKER, latency=0.05, reasoning=True, reasoning_tokens=120)
    result = await traced(fake, exporter, tmp_path).arun("Choose a database.")
    assert result.status == "completed"
    spans = Spans(exporter.get_finished_spans())
    assert len({s.context.trace_id for s in spans.all}) == 1
    run = spans.one("invoke_agent traced")
    assert run.parent is None
    assert run.attributes is not None
    assert run.attributes["orchestrator.run_id"] == result.run_id
    assert run.attributes["orchestrator.run.status"] == "completed"
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    nodes = {
        name: spans.one(f"node {name}") for name in ("plan", "review", "execute", "synthesize")
    }
    for node in nodes.values():
        assert spans.parent(node) is run and inside(node, run)
    plan_end, execute = nodes["plan"].end_time, nodes["execute"]
    assert (
        plan_end is not None and execute.start_time is not None and plan_end <= execute.start_time
    )
    steps = {sid: spans.one(f"subproblem {sid}") for sid in ("s1", "s2", "s3")}
    for step in steps.values():
        assert spans.parent(step) is execute and inside(step, execute)
    # s3 depends on s1 and s2: it starts only after both ended (s1 waits 50 ms at the server)
    for dep in ("s1", "s2"):
        end, start = steps[dep].end_time, steps["s3"].start_time
        assert end is not None and start is not None and start >= end - TOLERANCE_NS
    s1 = steps["s1"].attributes or {}
    assert s1["orchestrator.route.policy"] == "label" and s1["orchestrator.route.role"] == "reason"
    assert s1["orchestrator.step.kind"] == "reason" and s1["orchestrator.step.status"] == "done"

    calls = spans.calls()
    assert len(calls) == len(result.calls) == 5  # plan, three subproblems, synthesis
    parents = sorted(str(p.name) for c in calls if (p := spans.parent(c)) is not None)
    assert parents == ["node plan", "node synthesize", "subproblem s1", "subproblem s2",
                       "subproblem s3"]  # fmt: skip
    for call in calls:
        parent = spans.parent(call)
        assert parent is not None and inside(call, parent)
    [thinking] = [c for c in calls if spans.parent(c) is steps["s1"]]
    attributes = thinking.attributes or {}
    [record] = [c for c in result.calls if c.step == "s1"]
    assert thinking.name == f"chat {THINKER}"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == THINKER
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == record.usage.input_tokens
    assert attributes["orchestrator.usage.reasoning_tokens"] == 120
    assert attributes["orchestrator.cost_usd"] == pytest.approx(record.cost_usd)
    assert attributes["orchestrator.request.reasoning_effort"] == "low"
    assert attributes["orchestrator.route.escalations"] == 0
    assert attributes["orchestrator.cached"] is False
    assert attributes["server.address"] == "127.0.0.1"
    # the span lasts as long as the call did: the server held it 50 ms
    assert thinking.end_time and thinking.start_time
    assert thinking.end_time - thinking.start_time >= 50_000_000

    totals = usage_totals(result)
    for key, total in totals.items():
        assert sum(number(c, key) for c in calls) == total
        run_key = key.replace("gen_ai.", "orchestrator.")
        assert run.attributes[run_key] == total
    cost = sum(number(c, "orchestrator.cost_usd") for c in calls)
    assert cost == pytest.approx(result.usage.cost_usd)
    assert run.attributes["orchestrator.cost_usd"] == pytest.approx(result.usage.cost_usd)


async def test_a_retried_call_carries_its_failed_attempts(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    # The planner's first attempt is refused; the retry answers.
    fake.enqueue(Fault(status=503, headers={"Retry-After": "0"}), model=WRITER)
    result = await traced(fake, exporter, tmp_path).arun("Choose a database.")
    assert result.status == "completed"
    spans = Spans(exporter.get_finished_spans())
    [planning] = [c for c in spans.calls() if (p := spans.parent(c)) and p.name == "node plan"]
    assert (planning.attributes or {})["orchestrator.retry.attempts"] == 1
    [retry] = planning.events
    assert retry.name == "retry"
    assert retry.attributes is not None
    assert retry.attributes["orchestrator.retry.reason"] == "status"
    assert retry.attributes["http.response.status_code"] == 503
    assert retry.attributes["orchestrator.retry.attempt"] == 1
    assert retry.attributes["orchestrator.retry.wait_s"] == 0
    # the call's span covers the failed attempt too: it starts when the first attempt was sent
    assert planning.start_time is not None and retry.timestamp >= planning.start_time
    others = [c for c in spans.calls() if c is not planning]
    assert all((c.attributes or {})["orchestrator.retry.attempts"] == 0 for c in others)


async def test_attempts_of_a_call_that_gave_up_stay_on_its_subproblem(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    # The thinker fails twice (its one retry included); s1 falls back to the writer.
    for _ in range(2):
        fake.enqueue(Fault(status=503, headers={"Retry-After": "0"}), model=THINKER)
    workflow = traced(fake, exporter, tmp_path, retries=1, fallback="writer")
    result = await workflow.arun("Choose a database.")
    assert result.status == "completed"
    spans = Spans(exporter.get_finished_spans())
    s1 = spans.one("subproblem s1")
    [retry] = s1.events  # the failed attempt that was retried; the last one is the call's error
    assert retry.attributes is not None
    assert retry.attributes["orchestrator.profile"] == "thinker"
    assert retry.attributes["orchestrator.retry.attempt"] == 1
    [answer] = [c for c in spans.calls() if spans.parent(c) is s1]
    assert answer.name == f"chat {WRITER}" and answer.events == ()
    assert (answer.attributes or {})["orchestrator.retry.attempts"] == 0


async def test_a_failed_subproblem_and_its_run_are_errors(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    fake.enqueue(Fault(status=503), model=THINKER)  # and the thinker may not retry: s1 fails
    result = await traced(fake, exporter, tmp_path, retries=0).arun("Choose a database.")
    assert result.status == "failed"
    spans = Spans(exporter.get_finished_spans())
    s1 = spans.one("subproblem s1")
    assert s1.status.status_code is StatusCode.ERROR
    assert (s1.attributes or {})["orchestrator.step.status"] == "failed"
    run = spans.one("invoke_agent traced")
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["orchestrator.run.status"] == "failed"
    assert spans.named("subproblem s3") == []  # its dependency failed: it never started
    # every span ended, the run's last
    ends = [s.end_time or 0 for s in spans.all]
    assert max(ends) == run.end_time


async def test_each_later_attempt_links_to_the_runs_first(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    # three attempts: paused for approval, approved (s1 fails: no retries), resumed to the end
    fake.enqueue(Fault(status=503), model=THINKER)
    workflow = traced(fake, exporter, tmp_path, retries=0)
    paused = await workflow.arun("Choose a database.", approve_plan=True)
    assert paused.status == "awaiting_approval"
    failed = await workflow.aresume(paused.run_id, Approve())
    assert failed.status == "failed"
    done = await workflow.aresume(paused.run_id)
    assert done.status == "completed"

    runs = sorted(Spans(exporter.get_finished_spans()).named("invoke_agent traced"),
                  key=lambda s: s.start_time or 0)  # fmt: skip
    assert len(runs) == 3 and len({s.context.trace_id for s in runs}) == 3  # a trace each
    first, *later = runs
    assert not first.links and (first.attributes or {})["orchestrator.resumed"] is False
    for span in later:
        assert (span.attributes or {})["orchestrator.resumed"] is True
        assert (span.attributes or {})["orchestrator.run_id"] == paused.run_id
        [link] = span.links
        assert link.context.trace_id == first.context.trace_id
        assert link.context.span_id == first.context.span_id
        assert (link.attributes or {})["orchestrator.link"] == "first_attempt"


async def test_an_attempt_not_traced_keeps_the_link_for_the_next(
    fake: FakeOpenAI, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    workflow = traced(fake, exporter, tmp_path, retries=0)
    paused = await workflow.arun("t", approve_plan=True)  # traced
    fake.enqueue(Fault(status=503), model=THINKER)
    untraced = Workflow(parse_workflow(workflow_yaml(fake.base_url, 0)), home=tmp_path,
                        tracing=False)  # fmt: skip
    # not traced, and it writes checkpoints of its own (the plan approved, s2 done, s1 failed)
    assert (await untraced.aresume(paused.run_id, Approve())).status == "failed"
    assert (await workflow.aresume(paused.run_id)).status == "completed"  # traced
    runs = sorted(Spans(exporter.get_finished_spans()).named("invoke_agent traced"),
                  key=lambda s: s.start_time or 0)  # fmt: skip
    assert len(runs) == 2 and not runs[0].links
    [link] = runs[1].links
    assert link.context.span_id == runs[0].context.span_id


async def test_custom_graph_nodes_hold_their_steps(tmp_path: Path) -> None:
    (tmp_path / "draft.md").write_text("Write about: {{ task }}")
    (tmp_path / "wf.yaml").write_text(
        """
name: drafts
models:
  writer: {model: write-model, price: {input: 1, output: 2}}
roles: {plan: writer, reason: writer, generate: writer, synthesize: writer}
graph:
  output: count
  nodes:
    draft: {type: generate, prompt: draft.md}
    count: {type: python, function: count_words}
  edges:
    - {from: draft, to: count}
"""
    )
    spec = load_workflow(tmp_path / "wf.yaml")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = Workflow(
        spec,
        models={"writer": TestModel(default="three small words")},
        functions={"count_words": lambda state: len(str(state["draft"]).split())},
        home=tmp_path,
        tracing=provider,
    )
    result = await workflow.arun("write something")
    assert result.status == "completed" and result.output == "3"
    spans = Spans(exporter.get_finished_spans())
    for name in ("draft", "count"):
        node, step = spans.one(f"node {name}"), spans.one(f"subproblem {name}")
        assert spans.parent(step) is node and inside(step, node)
    [call] = spans.calls()
    assert spans.parent(call) is spans.one("subproblem draft")
    assert (call.attributes or {})["orchestrator.call.purpose"] == "node"


def test_nothing_is_traced_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    spec = parse_workflow(workflow_yaml("http://127.0.0.1:9/v1"))
    quiet = RunTracer(spec, "r1", None)
    assert quiet.otel is None and "callbacks" not in quiet.config()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert RunTracer(spec, "r2", False).otel is None  # tracing=False wins over the environment


def test_a_bad_endpoint_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(workflow_yaml("http://127.0.0.1:9/v1"))
    with pytest.raises(UsageError, match="not an http"):
        Workflow(load_workflow(path), tracing="localhost:4318")
    assert main(["run", str(path), "--input", "x", "--otel", "ftp://nowhere"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_otel_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    # A plain package shadowing `opentelemetry` hides the installed SDK and exporter.
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    path = tmp_path / "wf.yaml"
    path.write_text(workflow_yaml("http://127.0.0.1:9/v1"))
    env = {**os.environ, "PYTHONPATH": str(shadow.parent), "ORCHESTRATOR_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(path), "-i", "x", "--otel"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'orchestrator[otel]'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: decodes every POST /v1/traces."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                owner.requests.append(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[str | None, str, Any]]:
        """Every span received, with its resource's service.name and its scope's name."""
        found: list[tuple[str | None, str, Any]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        found.append((resource.get("service.name"), scope.scope.name, span))
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def attribute(span: Any, key: str) -> Any:
    for item in span.attributes:
        if item.key == key:
            value = item.value
            return getattr(value, value.WhichOneof("value"))
    raise KeyError(key)


@pytest.mark.parametrize("how", ["environment", "flag"])
def test_spans_reach_an_otlp_http_receiver_from_the_cli(
    fake: FakeOpenAI, receiver: Receiver, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(workflow_yaml(fake.base_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGSMITH_"))}
    env.update(ORCHESTRATOR_HOME=str(tmp_path / "home"), ORCHESTRATOR_PLAIN="1")
    args = [sys.executable, "-m", "orchestrator.cli", "run", str(path), "-i", "Choose.", "--json"]
    if how == "flag":
        args += ["--otel", receiver.url]
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    # The CLI flushes its spans before it exits: when it has, the receiver holds them all.
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    received = receiver.spans()
    assert {(service, scope) for service, scope, _ in received} == {
        ("orchestrator", "orchestrator")
    }
    spans = [span for _, _, span in received]
    assert len({s.trace_id for s in spans}) == 1
    by_id = {s.span_id: s for s in spans}
    names = sorted(s.name for s in spans)
    assert names.count("invoke_agent traced") == 1 and names.count("node execute") == 1
    assert {"subproblem s1", "subproblem s2", "subproblem s3"} <= set(names)
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == 5
    for call in calls:
        parent = by_id[call.parent_span_id]
        assert parent.name.startswith(("node ", "subproblem "))
        assert parent.start_time_unix_nano <= call.start_time_unix_nano
    profiles = result["usage"]["by_profile"].values()
    for key, field in (("gen_ai.usage.input_tokens", "input_tokens"),
                       ("gen_ai.usage.output_tokens", "output_tokens"),
                       ("orchestrator.usage.reasoning_tokens", "reasoning_tokens")):  # fmt: skip
        assert sum(attribute(c, key) for c in calls) == sum(p[field] for p in profiles)
    assert attribute(calls[0], "gen_ai.provider.name") == "openai"


async def test_a_run_inside_an_application_span_is_its_child(tmp_path: Path) -> None:
    spec = parse_workflow(
        """
name: nested
models:
  writer: {model: write-model, price: {input: 1, output: 2}}
roles: {plan: writer, reason: writer, generate: writer, synthesize: writer}
"""
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plan = [{"id": "s1", "kind": "generate", "task": "t", "depends_on": []}]
    workflow = Workflow(
        spec, models={"writer": TestModel(plan=plan)}, home=tmp_path, tracing=provider
    )
    with provider.get_tracer("app").start_as_current_span("handle request"):
        result = await workflow.arun("a task")
    assert result.status == "completed"
    spans = Spans(exporter.get_finished_spans())
    run, outer = spans.one("invoke_agent nested"), spans.one("handle request")
    assert spans.parent(run) is outer and inside(run, outer)
    assert len({s.context.trace_id for s in spans.all}) == 1
