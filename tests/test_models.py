"""The OpenAI-compatible client against the scripted server: mapping, traces, retries, usage."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from orchestrator.errors import EndpointError, ModelError, TruncatedError
from orchestrator.models.base import ChatModel, Message, RequestParams, ResponseFormat
from orchestrator.models.budget import Budget
from orchestrator.models.connect import connect
from orchestrator.models.ledger import Ledger
from orchestrator.models.openai import ClientPool, OpenAIChatModel
from orchestrator.models.pricing import cost_usd
from orchestrator.models.retry import ServerReportedError, retry_after_s
from orchestrator.models.trace import StreamFilter, split_trace
from orchestrator.models.wire import StreamAssembler, TokenRelay, parse_completion, sse_events
from orchestrator.specload import parse_workflow
from tests.fakeserver import FakeOpenAI, Fault, Reply

KEY = "sk-test-models-123456"


def make_model(server: FakeOpenAI, pool: ClientPool, body: str, name: str = "p") -> OpenAIChatModel:
    spec = parse_workflow(f"name: t\nmodels:\n  {name}:\n{body}")
    return OpenAIChatModel(name, spec.models[name], pool.get(server.base_url, KEY), server.base_url)


MESSAGES = [Message("instruction", "Be brief."), Message("user", "What is 2+2?")]


@pytest.mark.parametrize(
    ("content", "answer", "trace"),
    [
        ("plain answer", "plain answer", None),
        ("<think>step 1</think>The answer", "The answer", "step 1"),
        ("step 1\nstep 2</think>\n\nThe answer", "The answer", "step 1\nstep 2"),
        ("<think>still thinking", "", "still thinking"),
        ("A<think>x</think>B<think>y</think>C", "ABC", "x\n\ny"),
    ],
)
def test_split_trace(content: str, answer: str, trace: str | None) -> None:
    assert split_trace(content) == (answer, trace)


def test_stream_filter_hides_think_blocks_split_across_chunks() -> None:
    f = StreamFilter()
    chunks = ["<thi", "nk>secret rea", "soning</th", "ink>Vis", "ible <", "b>bold</b>"]
    assert [f.feed(c) for c in chunks] == ["", "", "", "Vis", "Visible", "Visible <b>bold</b>"]
    assert f.close() == "Visible <b>bold</b>"
    held = StreamFilter(hold=True)
    assert [held.feed(c) for c in ["secret ", "trace</think>", " answer"]] == ["", "", "answer"]
    assert held.close() == "answer"


@pytest.mark.parametrize(
    "content",
    [
        "plain answer with a < sign",
        "<think>step 1</think>The answer",
        "A<think>x</think>B<think>y</think>C",
        "  <think>a b</think>\n\n Answer  in words.  ",
        "Answer<think>cut off mid-thought",
    ],
)
def test_stream_filter_only_ever_extends_what_it_showed(content: str) -> None:
    # However the content is split into chunks, what is visible grows by appending only,
    # and ends as exactly split_trace's answer (no lone </think> here: that one withdraws).
    for size in range(1, len(content) + 1):
        f = StreamFilter()
        shown = ""
        for start in range(0, len(content), size):
            visible = f.feed(content[start : start + size])
            assert visible.startswith(shown), (size, shown, visible)
            shown = visible
        assert f.close().startswith(shown) and f.close() == split_trace(content)[0]


def test_stream_filter_reveals_a_lone_closing_tag() -> None:
    f = StreamFilter()
    assert f.feed("Let me think. ") == "Let me think."
    assert f.feed("Done.</think>") == ""  # what was visible was trace after all
    assert f.feed(" Four.") == "Four." == f.close()


async def test_reasoning_profile_request_mapping(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("o4-mini", reasoning=True, trace_style="reasoning_content")
    pool = ClientPool()
    model = make_model(
        fake_openai,
        pool,
        "    model: o4-mini\n    reasoning: true\n    reasoning_effort: high\n"
        "    price: {input: 1.0, cached_input: 0.25, output: 4.0}\n",
    )
    response = await model.request(
        MESSAGES, RequestParams(purpose="solve", step="s1", max_output_tokens=16_000)
    )
    await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    body, uncapped = (r.body for r in fake_openai.requests)
    assert body["messages"][0]["role"] == "system"  # not api.openai.com
    assert body["max_completion_tokens"] == 16_000 and "max_tokens" not in body
    assert "max_completion_tokens" not in uncapped  # the cap policy is a wrapper's, not ours
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and "top_p" not in body
    assert response.trace and "TRACE(o4-mini)" in response.trace
    assert "TRACE" not in response.content
    assert response.usage.reasoning_tokens == 50 and not response.usage.estimated
    assert response.finish_reason == "stop" and response.call is None
    assert response.latency_s is not None and response.started_at is not None


async def test_developer_role_on_openai_host_only() -> None:
    spec = parse_workflow("name: t\nmodels:\n  r: {model: o3, reasoning: true}\n")
    pool = ClientPool()
    client = pool.get("https://api.openai.com/v1", KEY)
    model = OpenAIChatModel("r", spec.models["r"], client, "https://api.openai.com/v1")
    body = model.build_request(MESSAGES, RequestParams(max_output_tokens=100))
    assert body["messages"][0]["role"] == "developer"
    await pool.aclose()


async def test_generative_profile_sends_temperature_and_structured_format(
    fake_openai: FakeOpenAI,
) -> None:
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n    temperature: 0.3\n")
    fmt = ResponseFormat("plan", {"type": "object", "properties": {}})
    await model.request(MESSAGES, RequestParams(purpose="plan", response_format=fmt))
    await pool.aclose()
    body = fake_openai.requests[0].body
    assert body["temperature"] == 0.3 and "max_completion_tokens" not in body
    assert body["response_format"]["json_schema"]["name"] == "plan"


async def test_cached_tokens_reported_and_priced_at_cached_rate(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("w", cached_tokens=8)
    pool = ClientPool()
    model = make_model(
        fake_openai, pool, "    model: w\n    price: {input: 10, cached_input: 1, output: 20}\n"
    )
    r = await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    u = r.usage
    assert u.cached_input_tokens == 8
    expected = ((u.input_tokens - 8) * 10 + 8 * 1 + u.output_tokens * 20) / 1e6
    assert cost_usd(u, model.spec.price) == pytest.approx(expected)


async def test_three_transient_failures_survived_with_defaults(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=429, headers={"Retry-After": "0"}))
    fake_openai.enqueue(Fault(drop=True))
    fake_openai.enqueue(Fault(malformed=True))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    r = await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    assert r.content.startswith("[w] answer")
    assert [q.outcome for q in fake_openai.requests] == ["fault:429", "drop", "malformed", "ok"]


async def test_retry_after_ms_is_honoured(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=503, headers={"retry-after-ms": "300"}))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    first, second = fake_openai.requests
    assert second.started - first.ended >= 0.29


async def test_permanent_errors_fail_at_once(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=401, body={"error": {"message": f"bad key {KEY}"}}))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    with pytest.raises(EndpointError) as info:
        await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    assert len(fake_openai.requests) == 1
    assert "profile 'p' (w)" in str(info.value) and "API key" in str(info.value)
    assert KEY not in str(info.value)


async def test_transient_errors_exhaust_retries(fake_openai: FakeOpenAI) -> None:
    for _ in range(2):
        fake_openai.enqueue(Fault(status=500))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n    retries: 1\n")
    with pytest.raises(ModelError, match="HTTP 500 after 2 attempts"):
        await model.request(MESSAGES, RequestParams())
    await pool.aclose()


async def connected(server: FakeOpenAI, pool: ClientPool, body: str) -> tuple[ChatModel, Ledger]:
    """Profile `r` as a run connects it: cap, budget and ledger wrappers around the client."""
    spec = parse_workflow(
        f"name: t\nmodels:\n  r:\n    base_url: {server.base_url}\n    api_key: {KEY}\n{body}"
    )
    ledger = Ledger()
    models = await connect(spec, {}, pool=pool, budget=Budget(None), ledger=ledger)
    return models["r"], ledger


async def test_cut_off_reasoning_doubles_cap_and_bills_every_call(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("r", reasoning=True)
    cut = Reply(content="", finish_reason="length", completion_tokens=100, reasoning_tokens=100)
    fake_openai.enqueue(cut)
    pool = ClientPool()
    body = "    model: r\n    reasoning: true\n    max_output_tokens: 100\n"
    model, ledger = await connected(fake_openai, pool, body)
    r = await model.request(MESSAGES, RequestParams())
    assert [q.body["max_completion_tokens"] for q in fake_openai.requests] == [100, 200]
    assert len(ledger.calls) == 2 and ledger.calls[0].usage.output_tokens == 100 and r.content
    for _ in range(3):
        fake_openai.enqueue(cut)
    with pytest.raises(TruncatedError):
        await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    assert len(ledger.calls) == 5  # 100, 200, 400 after the two above: every cut-off is billed


async def test_streaming_tokens_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("w", trace_style="think")
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    tokens: list[str] = []
    r = await model.request(MESSAGES, RequestParams(purpose="synthesize", on_token=tokens.append))
    await pool.aclose()
    assert len(tokens) > 1 and "".join(tokens) == r.content
    assert "TRACE" not in r.content and r.trace and "TRACE" in r.trace
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


async def test_one_client_per_endpoint(fake_openai: FakeOpenAI) -> None:
    pool = ClientPool()
    a = make_model(fake_openai, pool, "    model: a\n", name="a")
    b = make_model(fake_openai, pool, "    model: b\n", name="b")
    assert a.client is b.client
    assert pool.get("http://127.0.0.1:1/v1", KEY) is not a.client
    await pool.aclose()


async def test_cut_off_cap_grows_to_the_profile_ceiling(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("r", reasoning=True)
    for _ in range(3):
        fake_openai.enqueue(Reply(content="", finish_reason="length", completion_tokens=100))
    pool = ClientPool()
    body = (
        "    model: r\n    reasoning: true\n    max_output_tokens: 100\n"
        "    max_output_tokens_ceiling: 250\n"
    )
    model, _ = await connected(fake_openai, pool, body)
    with pytest.raises(TruncatedError, match="250 tokens"):
        await model.request(MESSAGES, RequestParams())
    await pool.aclose()
    assert [q.body["max_completion_tokens"] for q in fake_openai.requests] == [100, 200, 250]


# --- wire parsing, without a server ----------------------------------------------------------


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_sse_events_follow_the_event_stream_rules() -> None:
    lines = [": keep-alive", "", 'data: {"a":', "data: 1}", "", "event: error", "data: busy", ""]
    events = [e async for e in sse_events(_lines(*lines, "data: [DONE]"))]  # no final blank
    assert events == [("", '{"a":\n1}'), ("error", "busy"), ("", "[DONE]")]
    with pytest.raises(ServerReportedError, match="busy"):
        StreamAssembler(hold=False).feed("error", "busy")  # an error event need not be JSON


def test_thinking_parts_are_trace_not_answer() -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "two and two"}]}
    message = {"role": "assistant", "content": [thinking, {"type": "text", "text": "Four."}]}
    answer = parse_completion({"choices": [{"index": 0, "message": message}]})
    assert (answer.content, answer.trace, answer.finish_reason) == ("Four.", "two and two", None)
    assert answer.usage is None  # none reported: the caller estimates


def test_token_relay_never_shows_text_twice() -> None:
    seen: list[str | None] = []
    relay = TokenRelay(seen.append, lambda: seen.append(None))
    relay.show("Hello")
    relay.show("Hel")  # a retry replaying what was shown: nothing until it catches up
    relay.show("Hello wor")
    relay.show("Goodbye")  # a different answer: withdraw, then from its start
    relay.show("Good", final=True)  # finished shorter than shown: withdraw again
    assert seen == ["Hello", " wor", None, "Goodbye", None, "Good"]


def test_retry_after_forms() -> None:
    def wait(**headers: str) -> float | None:
        return retry_after_s(SimpleNamespace(response=SimpleNamespace(headers=headers)))

    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (wait(**{"retry-after": in_30s}) or 0) <= 30  # an HTTP-date
    assert wait(**{"retry-after-ms": "250", "retry-after": "9"}) == 0.25  # ms wins
    assert wait(**{"retry-after": "3600"}) == 120  # capped
    assert wait(**{"retry-after": "soon"}) is None and wait() is None  # our own backoff
    assert wait(**{"retry-after": "nan"}) is None
