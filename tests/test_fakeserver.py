"""The fake OpenAI server, exercised with the real openai clients (sync and async)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.fakeserver import FakeOpenAI, Fault, Reply, schema_errors_for

KEY = "sk-test-fakeserver"
MSGS: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France? Answer in one word."},
]


def client(server: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def aclient(server: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def post_raw(server: FakeOpenAI, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_normal_reply_with_usage_details(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("o4-mini", reasoning=True, reasoning_tokens=40, cached_tokens=7)
    raw = client(fake_openai).chat.completions.with_raw_response.create(
        model="o4-mini", messages=MSGS, max_completion_tokens=500, reasoning_effort="low"
    )
    assert schema_errors_for("CreateChatCompletionResponse", raw.http_response.json()) == []
    resp = raw.parse()
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content == "[o4-mini] answer: " + MSGS[1]["content"][:60]
    assert resp.choices[0].finish_reason == "stop"
    usage = resp.usage
    assert usage is not None
    chars = sum(len(m["content"]) for m in MSGS)
    assert usage.prompt_tokens == chars // 4
    content_tokens = len(resp.choices[0].message.content or "") // 4
    assert usage.completion_tokens == content_tokens + 40
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details and usage.prompt_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 40
    assert usage.prompt_tokens_details.cached_tokens == 7

    [rec] = fake_openai.requests
    assert (rec.model, rec.outcome, rec.is_plan) == ("o4-mini", "ok", False)
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    assert rec.body["max_completion_tokens"] == 500
    assert rec.started <= rec.ended


def test_defaults_for_unknown_model_and_omitted_details(fake_openai: FakeOpenAI) -> None:
    c = client(fake_openai)
    resp = c.chat.completions.create(model="anything", messages=MSGS, temperature=0.2)
    assert resp.usage and resp.usage.completion_tokens_details
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0  # not a reasoning model
    fake_openai.configure_model("vllm-model", omit_details=True)
    resp = c.chat.completions.create(model="vllm-model", messages=MSGS)
    assert resp.usage is not None
    assert resp.usage.completion_tokens_details is None
    assert resp.usage.prompt_tokens_details is None


@pytest.mark.parametrize(
    ("style", "field", "content"),
    [
        (None, None, "ANSWER"),
        ("reasoning_content", "reasoning_content", "ANSWER"),
        ("reasoning", "reasoning", "ANSWER"),
        ("think", None, "<think>TRACE</think>ANSWER"),
        ("lone_think", None, "TRACE</think>ANSWER"),
    ],
)
def test_trace_styles(fake_openai: FakeOpenAI, style: Any, field: str | None, content: str) -> None:
    fake_openai.configure_model("r1", reasoning=True, trace_style=style)
    resp = client(fake_openai).chat.completions.create(model="r1", messages=MSGS)
    trace, answer = "TRACE(r1): thinking about it", "[r1] answer: " + MSGS[1]["content"][:60]
    message = resp.choices[0].message
    assert message.content == content.replace("TRACE", trace).replace("ANSWER", answer)
    extra = message.model_extra or {}
    for name in ("reasoning_content", "reasoning"):
        assert extra.get(name) == (trace if name == field else None)


def test_canned_plan(fake_openai: FakeOpenAI) -> None:
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {"name": "Plan", "strict": True, "schema": {"type": "object"}},
    }
    c = client(fake_openai)
    fake_openai.configure_model("planner", latency=5.0)
    fake_openai.plan_latency = 0.0  # overrides the model's 5 s for plan requests only
    resp = c.chat.completions.create(model="planner", messages=MSGS, response_format=fmt)
    task = MSGS[1]["content"][:200]
    assert json.loads(resp.choices[0].message.content or "") == {
        "subproblems": [{"id": "s1", "kind": "generate", "task": task, "depends_on": []}]
    }
    plan = {"subproblems": [{"id": "a", "kind": "reason", "task": "x", "depends_on": []}]}
    fake_openai.set_plan(plan)
    resp = c.chat.completions.create(model="planner", messages=MSGS, response_format=fmt)
    assert json.loads(resp.choices[0].message.content or "") == plan
    assert [r.is_plan for r in fake_openai.requests] == [True, True]


async def test_streaming_with_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("ds", reasoning=True, trace_style="reasoning_content")
    stream = await aclient(fake_openai).chat.completions.create(
        model="ds", messages=MSGS, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert (
            schema_errors_for(
                "CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True)
            )
            == []
        )
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    trace = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    text = "".join(d.content or "" for d in deltas)
    assert trace == "TRACE(ds): thinking about it"
    assert text == "[ds] answer: " + MSGS[1]["content"][:60]
    assert len(deltas) > 4  # split into ~3-word pieces
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens_details
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 50


def test_streaming_cut_off_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("o4-mini", reasoning=True)
    cut = Reply(content="", finish_reason="length", reasoning_tokens=100, completion_tokens=100)
    fake_openai.enqueue(cut)
    fake_openai.enqueue(cut)
    c = client(fake_openai)
    resp = c.chat.completions.create(model="o4-mini", messages=MSGS, max_completion_tokens=100)
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message.content == ""
    assert resp.usage and resp.usage.completion_tokens == 100
    chunks = list(c.chat.completions.create(model="o4-mini", messages=MSGS, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == ""
    assert chunks[-1].choices[0].finish_reason == "length"
    assert [r.outcome for r in fake_openai.requests] == ["ok:length", "ok:length"]


def test_429_retry_after_headers(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=429, headers={"Retry-After": "2", "retry-after-ms": "1500"}))
    with pytest.raises(openai.RateLimitError) as info:
        client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.response.headers["retry-after-ms"] == "1500"
    assert info.value.code == "rate_limit_exceeded"
    assert fake_openai.requests[0].outcome == "fault:429"


async def test_500_and_custom_body(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault())
    fake_openai.enqueue(Fault(status=503, body={"error": {"message": "overloaded"}}))
    c = aclient(fake_openai)
    with pytest.raises(openai.InternalServerError) as info:
        await c.chat.completions.create(model="m", messages=MSGS)
    assert info.value.status_code == 500 and info.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as info:
        await c.chat.completions.create(model="m", messages=MSGS)
    assert info.value.status_code == 503 and info.value.message.endswith("overloaded")
    resp = await c.chat.completions.create(model="m", messages=MSGS)  # queue drained
    assert resp.choices[0].message.content
    assert [r.outcome for r in fake_openai.requests] == ["fault:500", "fault:503", "ok"]


async def test_dropped_connection(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(drop=True))
    with pytest.raises(openai.APIConnectionError):
        client(fake_openai).chat.completions.create(model="m", messages=MSGS)
    fake_openai.enqueue(Fault(drop=True, delay=0.1))
    with pytest.raises(openai.APIConnectionError):
        await aclient(fake_openai).chat.completions.create(model="m", messages=MSGS)
    assert [r.outcome for r in fake_openai.requests] == ["drop", "drop"]
    assert fake_openai.requests[1].ended - fake_openai.requests[1].started >= 0.1


def test_malformed_body(fake_openai: FakeOpenAI) -> None:
    c = client(fake_openai)
    # Surprise: with a non-JSON Content-Type (text/html, what a proxy sends) the SDK does NOT
    # raise: create() returns the raw body as a plain str instead of a ChatCompletion.
    fake_openai.enqueue(Fault(malformed=True))
    resp: Any = c.chat.completions.create(model="m", messages=MSGS)
    assert isinstance(resp, str) and not isinstance(resp, ChatCompletion)
    assert resp == "<html>upstream hiccup"
    # With Content-Type application/json the SDK calls response.json() and the bare
    # json.JSONDecodeError (a ValueError, not an openai.APIError) escapes create().
    fake_openai.enqueue(Fault(malformed=True, headers={"Content-Type": "application/json"}))
    with pytest.raises(json.JSONDecodeError) as info:
        c.chat.completions.create(model="m", messages=MSGS)
    assert not isinstance(info.value, openai.APIError)
    assert [r.outcome for r in fake_openai.requests] == ["malformed", "malformed"]


async def test_parallel_latency(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("slow", latency=0.4)
    c = aclient(fake_openai)
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(c.chat.completions.create(model="slow", messages=MSGS) for _ in range(8))
    )
    elapsed = time.monotonic() - t0
    assert len(results) == 8 and 0.4 <= elapsed < 1.0, elapsed
    assert fake_openai.peak_in_flight == 8
    assert all(r.ended - r.started >= 0.4 for r in fake_openai.requests)


def test_latency_callable_and_reply_override(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("m", latency=lambda body: 0.05 * len(body["messages"]))
    c = client(fake_openai)
    c.chat.completions.create(model="m", messages=MSGS)
    fake_openai.enqueue(Reply(content="quick", latency=0.0))
    assert c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "quick"
    slow, quick = fake_openai.requests
    assert slow.ended - slow.started >= 0.1 > quick.ended - quick.started


def test_queue_matches_model_fifo_then_responder(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(content="for-b-1"), model="b")
    fake_openai.enqueue(Reply(content="any"))
    fake_openai.enqueue(Reply(content="for-b-2"), model="b")
    fake_openai.responder = lambda body: Reply(content="R:" + body["model"])
    c = client(fake_openai)

    def ask(model: str) -> str | None:
        return c.chat.completions.create(model=model, messages=MSGS).choices[0].message.content

    assert [ask("a"), ask("b"), ask("b"), ask("a")] == ["any", "for-b-1", "for-b-2", "R:a"]
    assert fake_openai.pending == 0
    fake_openai.reset()
    assert fake_openai.requests == [] and fake_openai.responder is None
    assert ask("a") == "[a] answer: " + MSGS[1]["content"][:60]


def test_schema_validation_catches_invalid_bodies(fake_openai: FakeOpenAI) -> None:
    status, _ = post_raw(fake_openai, "/chat/completions", {"model": "m", "messages": []})
    assert status == 200  # recorded, not rejected (unless reject_invalid)
    bad_role = {"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}
    post_raw(fake_openai, "/chat/completions", bad_role)
    errors = fake_openai.schema_errors
    assert len(errors) == 2 and "messages" in errors[0], errors
    fake_openai.clear_schema_errors()

    fake_openai.configure_model("o4-mini", reasoning=True)
    c = client(fake_openai)
    c.chat.completions.create(model="o4-mini", messages=MSGS, max_tokens=10)
    c.chat.completions.create(model="o4-mini", messages=MSGS, temperature=0.7, top_p=1)
    c.chat.completions.create(model="o4-mini", messages=MSGS, temperature=1, top_p=0.5)
    errors = fake_openai.schema_errors
    assert len(errors) == 3, errors
    assert "max_tokens" in errors[0] and "temperature" in errors[1] and "top_p" in errors[2]
    fake_openai.clear_schema_errors()

    fake_openai.reject_invalid = True
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="o4-mini", messages=MSGS, max_tokens=10)
    fake_openai.clear_schema_errors()


def test_models_endpoint_and_404(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("o4-mini", reasoning=True)
    fake_openai.configure_model("gpt-4o-mini")
    c = client(fake_openai)
    assert [m.id for m in c.models.list()] == ["o4-mini", "gpt-4o-mini"]
    status, body = post_raw(fake_openai, "/moderations", {"input": "x"})
    assert status == 404 and body["error"]["code"] == "unknown_url"
    status, body = post_raw(fake_openai, "/embeddings", {"model": "e", "input": ["x y", "z"]})
    assert status == 200 and [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == 3 and len(body["data"][0]["embedding"]) == 64
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="m", prompt="x")
    assert fake_openai.requests == []  # only chat completions are recorded


def test_start_stop_without_context_manager() -> None:
    server = FakeOpenAI().start()
    try:
        url = server.base_url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert client(server).chat.completions.create(model="m", messages=MSGS).choices
    finally:
        server.stop()
    with pytest.raises(RuntimeError):
        _ = server.base_url


# --- misbehaving servers -------------------------------------------------------------------


async def sse_lines(server: FakeOpenAI) -> tuple[dict[str, str], list[str]]:
    """Headers and the non-blank lines of one raw streamed response."""
    create = aclient(server).chat.completions.with_streaming_response.create
    async with create(model="m", messages=MSGS, stream=True) as response:
        lines = [line async for line in response.iter_lines() if line]
        return dict(response.headers), lines


async def test_stream_endings(fake_openai: FakeOpenAI) -> None:
    _, lines = await sse_lines(fake_openai)
    assert lines[-1] == "data: [DONE]" and '"finish_reason": "stop"' in lines[-2]
    fake_openai.enqueue(Reply(cut_after=1, done=False, close="eof"))
    headers, lines = await sse_lines(fake_openai)
    assert "transfer-encoding" not in headers and headers["connection"] == "close"
    assert len(lines) == 2 and 'finish_reason": null' in lines[1]  # role chunk, one piece
    fake_openai.enqueue(Reply(error={"message": "busy"}, cut_after=1))
    _, lines = await sse_lines(fake_openai)
    assert lines[-2:] == ['data: {"error": {"message": "busy"}}', "data: [DONE]"]
    fake_openai.enqueue(Reply(cut_after=1, close="drop"))
    with pytest.raises(Exception, match="incomplete chunked read"):
        await sse_lines(fake_openai)
    assert [r.outcome for r in fake_openai.requests] == ["ok", "cut", "error:200", "cut"]


def test_odd_bodies(fake_openai: FakeOpenAI) -> None:
    c = client(fake_openai)
    fake_openai.enqueue(Reply(tool_calls=True, usage=False))
    raw = c.chat.completions.with_raw_response.create(model="m", messages=MSGS)
    body = raw.http_response.json()
    assert schema_errors_for("CreateChatCompletionResponse", body) == []
    choice = body["choices"][0]
    assert choice["message"]["content"] is None and choice["finish_reason"] == "tool_calls"
    assert "usage" not in body
    fake_openai.enqueue(Reply(content="a b", content_parts=True, byte_delay=0.001))
    message = c.chat.completions.create(model="m", messages=MSGS).choices[0].message
    assert message.content == [{"type": "text", "text": "a b"}]


def test_trickle_never_finishes(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(trickle=0.05))
    req = urllib.request.Request(
        fake_openai.base_url + "/chat/completions",
        data=json.dumps({"model": "m", "messages": MSGS}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=1) as resp:  # a timeout per read, never reached
        assert resp.status == 200 and resp.read(4) == b"    "  # JSON whitespace, slowly
    assert time.monotonic() - started >= 0.15
    assert fake_openai.requests[0].outcome == "trickle"  # it stopped once we hung up
