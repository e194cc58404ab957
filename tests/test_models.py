"""The OpenAI-compatible client against the scripted server: mapping, traces, retries, usage."""

from __future__ import annotations

import pytest

from orchestrator.errors import EndpointError, ModelError, TruncatedError
from orchestrator.models.base import Message, ResponseFormat
from orchestrator.models.openai import ClientPool, OpenAIChatModel
from orchestrator.models.pricing import cost_usd
from orchestrator.models.trace import StreamFilter, split_trace
from orchestrator.spec import parse_workflow
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
    shown = "".join(f.feed(c) for c in chunks) + f.close()
    assert shown == "Visible <b>bold</b>"
    held = StreamFilter(hold=True)
    shown = "".join(held.feed(c) for c in ["secret ", "trace</think>", " answer"]) + held.close()
    assert shown == "answer"


async def test_reasoning_profile_request_mapping(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("o4-mini", reasoning=True, trace_style="reasoning_content")
    pool = ClientPool()
    model = make_model(
        fake_openai,
        pool,
        "    model: o4-mini\n    reasoning: true\n    reasoning_effort: high\n"
        "    price: {input: 1.0, cached_input: 0.25, output: 4.0}\n",
    )
    response = await model.request(MESSAGES, purpose="solve:s1")
    await pool.aclose()
    body = fake_openai.requests[0].body
    assert body["messages"][0]["role"] == "system"  # not api.openai.com
    assert body["max_completion_tokens"] == 16_000 and "max_tokens" not in body
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and "top_p" not in body
    assert response.trace and "TRACE(o4-mini)" in response.trace
    assert "TRACE" not in response.content
    assert response.usage.reasoning_tokens == 50
    assert response.cost_usd == pytest.approx(cost_usd(response.usage, model.spec.price))


async def test_developer_role_on_openai_host_only() -> None:
    spec = parse_workflow("name: t\nmodels:\n  r: {model: o3, reasoning: true}\n")
    pool = ClientPool()
    client = pool.get("https://api.openai.com/v1", KEY)
    model = OpenAIChatModel("r", spec.models["r"], client, "https://api.openai.com/v1")
    body = model.build_request(MESSAGES, None, 100)
    assert body["messages"][0]["role"] == "developer"
    await pool.aclose()


async def test_generative_profile_sends_temperature_and_structured_format(
    fake_openai: FakeOpenAI,
) -> None:
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n    temperature: 0.3\n")
    fmt = ResponseFormat("plan", {"type": "object", "properties": {}})
    await model.request(MESSAGES, purpose="plan", response_format=fmt)
    await pool.aclose()
    body = fake_openai.requests[0].body
    assert body["temperature"] == 0.3 and "max_completion_tokens" not in body
    assert body["response_format"]["json_schema"]["name"] == "plan"


async def test_cached_tokens_priced_at_cached_rate(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("w", cached_tokens=8)
    pool = ClientPool()
    model = make_model(
        fake_openai, pool, "    model: w\n    price: {input: 10, cached_input: 1, output: 20}\n"
    )
    r = await model.request(MESSAGES, purpose="x")
    await pool.aclose()
    u = r.usage
    assert u.cached_input_tokens == 8
    expected = ((u.input_tokens - 8) * 10 + 8 * 1 + u.output_tokens * 20) / 1e6
    assert r.cost_usd == pytest.approx(expected)


async def test_three_transient_failures_survived_with_defaults(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=429, headers={"Retry-After": "0"}))
    fake_openai.enqueue(Fault(drop=True))
    fake_openai.enqueue(Fault(malformed=True))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    r = await model.request(MESSAGES, purpose="x")
    await pool.aclose()
    assert r.content.startswith("[w] answer")
    assert [q.outcome for q in fake_openai.requests] == ["fault:429", "drop", "malformed", "ok"]


async def test_retry_after_ms_is_honoured(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=503, headers={"retry-after-ms": "300"}))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    await model.request(MESSAGES, purpose="x")
    await pool.aclose()
    first, second = fake_openai.requests
    assert second.started - first.ended >= 0.29


async def test_permanent_errors_fail_at_once(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=401, body={"error": {"message": f"bad key {KEY}"}}))
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    with pytest.raises(EndpointError) as info:
        await model.request(MESSAGES, purpose="x")
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
        await model.request(MESSAGES, purpose="x")
    await pool.aclose()


async def test_cut_off_reasoning_doubles_cap_and_bills_every_call(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("r", reasoning=True)
    cut = Reply(content="", finish_reason="length", completion_tokens=100, reasoning_tokens=100)
    fake_openai.enqueue(cut)
    pool = ClientPool()
    model = make_model(
        fake_openai, pool, "    model: r\n    reasoning: true\n    max_output_tokens: 100\n"
    )
    r = await model.request(MESSAGES, purpose="x")
    assert [q.body["max_completion_tokens"] for q in fake_openai.requests] == [100, 200]
    assert len(r.calls) == 2 and r.usage.output_tokens >= 100
    for _ in range(3):
        fake_openai.enqueue(cut)
    with pytest.raises(TruncatedError) as info:
        await model.request(MESSAGES, purpose="x")
    await pool.aclose()
    assert len(info.value.calls) == 3  # 100, 200, 400: every cut-off call is billed


async def test_streaming_tokens_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.configure_model("w", trace_style="think")
    pool = ClientPool()
    model = make_model(fake_openai, pool, "    model: w\n")
    tokens: list[str] = []
    r = await model.request(MESSAGES, purpose="synthesize", on_token=tokens.append)
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
    model = make_model(
        fake_openai,
        pool,
        "    model: r\n    reasoning: true\n    max_output_tokens: 100\n"
        "    max_output_tokens_ceiling: 250\n",
    )
    with pytest.raises(TruncatedError, match="250 tokens"):
        await model.request(MESSAGES, purpose="x")
    await pool.aclose()
    assert [q.body["max_completion_tokens"] for q in fake_openai.requests] == [100, 200, 250]
