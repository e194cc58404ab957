"""The runs API of `orchestrator serve` (start, list, inspect, events, resume, cancel), its
limits (concurrent runs, body size) and its metrics, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.serve import ServeConfig
from orchestrator.serve import manager as manager_module
from orchestrator.serve.manager import RunEntry, RunManager
from orchestrator.serve.metrics import Metrics
from tests.fakeserver import FakeOpenAI
from tests.test_serve_support import PLAN, follow, serving, solve_calls, sse_events, write_workflow


class Gate:
    """Holds the scripted server's reply to the slow subproblem until the test opens it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.open = threading.Event()

    def latency(self, body: dict[str, Any]) -> float:
        if "slow deep part" in str(body["messages"][-1]):
            self.arrived.set()
            self.open.wait(60)
        return 0.0


@pytest.fixture
def gate(openai_env: FakeOpenAI) -> Iterator[Gate]:
    gate = Gate()
    openai_env.configure_model("think-model", reasoning=True, latency=gate.latency)
    openai_env.set_plan(PLAN)
    yield gate
    gate.open.set()


@pytest.fixture
def base(gate: Gate, tmp_path: Path) -> Iterator[str]:
    with serving([write_workflow(tmp_path)]) as url:
        yield url


def start(base: str, **body: Any) -> str:
    r = httpx.post(f"{base}/runs", json={"workflow": "served", "input": "the task", **body})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/runs/{r.json()['id']}"
    return str(r.json()["id"])


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in run["subproblems"]}


def test_approval_resume_and_last_event_id(gate: Gate, base: str) -> None:
    gate.open.set()
    run_id = start(base, approve_plan=True)
    first = follow(base, run_id)
    assert [e for _, e, _ in first] == ["call_finished", "plan_ready", "run_finished"]
    assert first[-1][2]["result"]["status"] == "awaiting_approval"
    run = httpx.get(f"{base}/runs/{run_id}").json()
    assert run["status"] == "awaiting_approval" and run["workflow"] == "served"
    assert statuses(run) == {"fast1": "pending", "slow": "pending", "last": "pending"}
    assert run["usage"]["by_profile"]["writer"]["calls"] == 1  # the plan, so far

    resume = f"{base}/runs/{run_id}/resume"
    for body, param in [
        ({}, "decision"),
        ({"decision": "answer", "answer": "yes"}, "decision"),
        ({"decision": "edit"}, "plan"),
        ({"decision": "edit", "plan": [{"id": "a", "kind": "nope", "task": "t"}]}, "plan"),
        ({"decision": "maybe"}, "decision"),
    ]:
        refused = httpx.post(resume, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["param"] == param
    assert httpx.post(resume, json={"decision": "approve"}).status_code == 202
    rest = follow(base, run_id, last_id=first[-1][0])
    ids = [i for i, _, _ in first + rest]
    assert len(set(ids)) == len(ids)  # nothing sent twice
    assert rest[-1][1] == "run_finished" and rest[-1][2]["result"]["status"] == "completed"
    kinds = {e for _, e, _ in rest}
    assert {"subproblem_started", "subproblem_finished", "answer_token"} <= kinds
    call = next(d["call"] for _, e, d in rest if e == "call_finished")
    assert call["profile"] in ("writer", "thinker") and call["cost_usd"] > 0

    # Reconnecting mid-stream gives exactly what came after the id given.
    whole = follow(base, run_id)
    assert follow(base, run_id, last_id=whole[4][0]) == whole[5:]
    assert follow(base, run_id, last_id="someone-else-7") == whole  # not ours: from the start
    done = httpx.get(f"{base}/runs/{run_id}").json()
    assert done["status"] == "completed" and done["output"]
    again = httpx.post(resume, json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "completed"


def test_cancel_keeps_what_finished_and_resume_continues(
    gate: Gate, base: str, fake_openai: FakeOpenAI
) -> None:
    run_id = start(base)
    with httpx.stream("GET", f"{base}/runs/{run_id}/events", timeout=60) as r:
        for _, event, data in sse_events(r):
            if event == "subproblem_finished" and data["result"]["id"] == "fast1":
                break
    assert gate.arrived.wait(30)
    listed = httpx.get(f"{base}/runs").json()
    assert listed["object"] == "list"
    assert [(r["id"], r["status"]) for r in listed["data"]] == [(run_id, "running")]
    running = httpx.get(f"{base}/runs/{run_id}").json()
    assert running["status"] == "running" and statuses(running)["fast1"] == "done"

    cancelled = httpx.delete(f"{base}/runs/{run_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert statuses(cancelled.json())["fast1"] == "done"  # checkpointed, kept
    assert follow(base, run_id)[-1][1] == "run_cancelled"
    assert httpx.delete(f"{base}/runs/{run_id}").status_code == 409
    assert httpx.get(f"{base}/runs").json()["data"][0]["status"] == "cancelled"

    gate.open.set()
    assert httpx.post(f"{base}/runs/{run_id}/resume", json={}).status_code == 202
    events = follow(base, run_id)
    assert events[-1][2]["result"]["status"] == "completed"
    assert len(solve_calls(fake_openai.requests, "quick part one")) == 1  # not paid twice
    assert len(solve_calls(fake_openai.requests, "slow deep part")) == 2  # cut off: asked again


def test_limits(gate: Gate, openai_env: FakeOpenAI, tmp_path: Path) -> None:
    with serving([write_workflow(tmp_path)], max_concurrent_runs=1, max_body_bytes=2048) as base:
        run_id = start(base)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.RateLimitError) as busy:
            client.chat.completions.create(
                model="served", messages=[{"role": "user", "content": "x"}]
            )
        assert busy.value.response.headers["retry-after"] == "1"
        assert isinstance(busy.value.body, dict) and busy.value.body["code"] == "too_many_runs"
        also = httpx.post(f"{base}/runs", json={"workflow": "served", "input": "x"})
        assert also.status_code == 429 and also.headers["retry-after"] == "1"

        big = {"model": "served", "messages": [{"role": "user", "content": "x" * 4096}]}
        too_large = httpx.post(f"{base}/v1/chat/completions", json=big)
        assert too_large.status_code == 413
        assert too_large.json()["error"]["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"model": "served", "messages": [{"role": "user", "content": "'
            yield b"x" * 4096
            yield b'"}]}'

        streamed = httpx.post(f"{base}/v1/chat/completions", content=chunks())
        assert streamed.status_code == 413
        assert httpx.delete(f"{base}/runs/{run_id}").status_code == 200
        gate.open.set()


def test_unknown_runs_and_bad_requests(gate: Gate, base: str) -> None:
    missing = httpx.get(f"{base}/runs/no-such-run")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
    assert httpx.get(f"{base}/runs/no-such-run/events").status_code == 404
    assert httpx.post(f"{base}/runs/no-such-run/resume", json={}).status_code == 404
    assert httpx.delete(f"{base}/runs/no-such-run").status_code == 404
    unknown = httpx.post(f"{base}/runs", json={"workflow": "nope", "input": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "workflow"
    for body in ({"workflow": "served"}, {"workflow": "served", "input": "  "}, {"x": 1}):
        assert httpx.post(f"{base}/runs", json=body).status_code == 400
    assert httpx.get(f"{base}/runs?limit=0").status_code == 400
    assert httpx.get(f"{base}/runs?limit=x").status_code == 400


def test_metrics(gate: Gate, base: str, fake_openai: FakeOpenAI) -> None:
    gate.open.set()
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
    completions = [  # two: the second counts on the same labelled series as the first
        client.chat.completions.create(model="served", messages=[{"role": "user", "content": x}])
        for x in ("x", "y")
    ]
    usages = [c.usage for c in completions]
    assert usages[0] is not None and usages[1] is not None
    r = httpx.get(f"{base}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    completed = (("status", "completed"), ("workflow", "served"))
    assert samples[("orchestrator_runs_total", completed)] == 2
    writer_calls = sum(1 for model, _ in fake_openai.billed if model == "write-model")
    key = ("orchestrator_model_calls_total", (("model", "write-model"), ("profile", "writer")))
    assert samples[key] == writer_calls
    tokens = sum(
        v
        for (name, labels), v in samples.items()
        if name == "orchestrator_tokens_total" and ("kind", "input") in labels
    )
    assert tokens == usages[0].prompt_tokens + usages[1].prompt_tokens
    cost = sum(v for (n, _), v in samples.items() if n == "orchestrator_cost_usd_total")
    assert cost == pytest.approx(sum((u.model_extra or {})["cost_usd"] for u in usages))
    assert any(n == "orchestrator_model_call_seconds_bucket" for n, _ in samples)
    http = ("route", "/v1/chat/completions")
    assert any(n == "orchestrator_http_request_seconds_count" and http in ls for n, ls in samples)
    assert samples[("orchestrator_runs_active", (("workflow", "served"),))] == 0
    chat = (("method", "POST"), ("route", "/v1/chat/completions"), ("status", "200"))
    assert samples[("orchestrator_http_request_seconds_count", chat)] == 2


def test_finished_runs_kept_are_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "KEEP_FINISHED", 2)
    manager = RunManager(ServeConfig({}), Metrics())
    for run_id, running in [("f1", False), ("r1", True), ("f2", False), ("f3", False)]:
        entry = RunEntry(run_id, cast(Any, None))
        entry.running = running
        manager.entries[run_id] = entry
    manager.active = 1
    manager._retire()  # three finished, two kept: the oldest goes
    assert list(manager.entries) == ["r1", "f2", "f3"]
    manager.entries["f4"] = RunEntry("f4", cast(Any, None))
    manager._retire()
    assert list(manager.entries) == ["r1", "f3", "f4"]  # the running one stays, however old
    manager._retire()
    assert list(manager.entries) == ["r1", "f3", "f4"]


HUMAN = """
name: asks
models:
  writer: {model: write-model, retries: 0, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: writer, generate: writer, synthesize: writer}
graph:
  output: final
  nodes:
    draft: {type: generate, prompt: draft.md}
    ask: {type: human, message: "Is this fine? {{ draft }}"}
    final: {type: generate, prompt: final.md}
  edges:
    - {from: draft, to: ask}
    - {from: ask, to: final}
"""


def test_a_question_pauses_the_chat_and_the_runs_api_answers_it(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "draft.md").write_text("Draft: {{ task }}")
    (tmp_path / "final.md").write_text("Revise per the reviewer: {{ ask }}\n\n{{ draft }}")
    with serving([write_workflow(tmp_path, "asks", HUMAN)]) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.ConflictError) as paused:
            client.chat.completions.create(
                model="asks", messages=[{"role": "user", "content": "a haiku"}]
            )
        assert isinstance(paused.value.body, dict) and paused.value.body["code"] == "run_paused"
        run_id = paused.value.response.headers["x-orchestrator-run-id"]
        assert f"POST /runs/{run_id}/resume" in paused.value.message
        run = httpx.get(f"{base}/runs/{run_id}").json()
        assert run["status"] == "awaiting_input" and run["question"].startswith("Is this fine?")
        wrong = httpx.post(f"{base}/runs/{run_id}/resume", json={"decision": "approve"})
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "answer"
        answered = httpx.post(f"{base}/runs/{run_id}/resume", json={"answer": "shorter"})
        assert answered.status_code == 202
        assert follow(base, run_id)[-1][2]["result"]["status"] == "completed"
        assert "Revise per the reviewer: shorter" in str(openai_env.requests[-1].body)


def test_a_client_that_goes_away_stops_its_run(gate: Gate, base: str) -> None:
    body = {"model": "served", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=60) as r:
        run_id = r.headers["x-orchestrator-run-id"]
        assert next(r.iter_lines()).startswith("data: ")  # the first chunk, then hang up
    assert follow(base, run_id)[-1][1] == "run_cancelled"
    run = httpx.get(f"{base}/runs/{run_id}").json()
    assert run["status"] == "cancelled"
    gate.open.set()


def test_a_run_cancelled_during_its_first_call_stops_when_it_returns(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    gate = Gate()
    openai_env.set_plan(PLAN)

    def plan_latency(body: dict[str, Any]) -> float:
        if "subproblems" in json.dumps(body.get("response_format") or {}):
            gate.arrived.set()
            gate.open.wait(60)
        return 0.0

    openai_env.configure_model("write-model", latency=plan_latency)
    try:
        with serving([write_workflow(tmp_path)]) as base:
            run_id = start(base)
            assert gate.arrived.wait(30)  # the plan call is in flight
            stopping = httpx.delete(f"{base}/runs/{run_id}")
            assert stopping.status_code == 202 and stopping.json()["status"] == "running"
            gate.open.set()
            assert follow(base, run_id)[-1][1] == "run_cancelled"
            run = httpx.get(f"{base}/runs/{run_id}").json()
            assert run["status"] == "cancelled"
            assert run["usage"]["by_profile"]["writer"]["calls"] == 1  # the plan: paid, kept
    finally:
        gate.open.set()
    assert not solve_calls(openai_env.requests, "quick part one")  # nothing after the plan
