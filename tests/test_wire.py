"""The HTTP client against misbehaving servers: the real scripted server, over a real socket.

Each test scripts one way an OpenAI-compatible server goes wrong (see `Reply` and `Fault` in
tests/fakereplies.py) and checks what `OpenAIChatModel.request` makes of it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from orchestrator.errors import EndpointError, ModelError
from orchestrator.models.base import Message, ModelResponse, RequestParams
from orchestrator.models.openai import ClientPool, OpenAIChatModel
from orchestrator.specload import parse_workflow
from tests.fakereplies import TraceStyle
from tests.fakeserver import FakeOpenAI, Fault, Reply

KEY = "sk-test-wire-0123456789abcdef"
MESSAGES = [Message("instruction", "Be brief."), Message("user", "What is 2+2?")]
ANSWER = "[w] answer: What is 2+2?"  # the fake server's default reply to MESSAGES for model w
OVERLOADED = {"message": f"upstream overloaded (key {KEY})", "type": "server_error"}


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    pool = ClientPool()
    yield pool
    await pool.aclose()


def make(
    server: FakeOpenAI, pool: ClientPool, extra: str = "", model: str = "w"
) -> OpenAIChatModel:
    """Profile `p` serving `model` from the scripted server, plus `extra` YAML lines."""
    spec = parse_workflow(f"name: t\nmodels:\n  p:\n    model: {model}\n{extra}")
    return OpenAIChatModel("p", spec.models["p"], pool.get(server.base_url, KEY), server.base_url)


@dataclass
class Screen:
    """What a streaming consumer saw: tokens, and restarts between them."""

    seen: list[str | None] = field(default_factory=list)  # None marks a restart

    def params(self) -> RequestParams:
        return RequestParams(on_token=self.seen.append, on_restart=lambda: self.seen.append(None))

    @property
    def restarts(self) -> int:
        return self.seen.count(None)

    @property
    def shown(self) -> str:
        """The text on screen now: what was streamed since the last restart."""
        start = len(self.seen) - self.seen[::-1].index(None) if self.restarts else 0
        return "".join(t for t in self.seen[start:] if t is not None)


async def ask(model: OpenAIChatModel, screen: Screen | None = None) -> ModelResponse:
    return await model.request(MESSAGES, screen.params() if screen else RequestParams())


def outcomes(server: FakeOpenAI) -> list[str]:
    return [r.outcome for r in server.requests]


# --- 1. an error object inside a 200 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "streamed", "outcome"),
    [
        pytest.param(Reply(error=OVERLOADED), False, "error:200", id="body"),
        pytest.param(Reply(error=OVERLOADED, cut_after=1), True, "error:200", id="sse-event"),
        pytest.param(
            Fault(status=200, body={"error": OVERLOADED}), True, "fault:200", id="json-to-stream"
        ),
    ],
)
async def test_error_inside_200_is_retried(
    fake_openai: FakeOpenAI,
    pool: ClientPool,
    behaviour: Reply | Fault,
    streamed: bool,
    outcome: str,
) -> None:
    fake_openai.enqueue(behaviour)
    screen = Screen() if streamed else None
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == ANSWER
    assert outcomes(fake_openai) == [outcome, "ok"]
    if screen:  # the retry's answer continues what the failed attempt showed
        assert screen.restarts == 0 and screen.shown == ANSWER


@pytest.mark.parametrize("streamed", [False, True], ids=["body", "stream"])
async def test_error_inside_200_fails_with_the_servers_message(
    fake_openai: FakeOpenAI, pool: ClientPool, streamed: bool
) -> None:
    for _ in range(2):
        fake_openai.enqueue(Reply(error=OVERLOADED))
    with pytest.raises(ModelError) as info:
        await ask(make(fake_openai, pool, "    retries: 1\n"), Screen() if streamed else None)
    message = str(info.value)
    assert "profile 'p' (w)" in message and "2 attempts" in message
    assert "upstream overloaded" in message and KEY not in message
    assert outcomes(fake_openai) == ["error:200"] * 2


# --- 2. tool calls instead of text ----------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["body", "stream"])
async def test_tool_calls_are_returned_billed_not_raised(
    fake_openai: FakeOpenAI, pool: ClientPool, streamed: bool
) -> None:
    fake_openai.enqueue(Reply(tool_calls=True, completion_tokens=12))
    screen = Screen() if streamed else None
    response = await ask(make(fake_openai, pool), screen)
    assert (response.content, response.finish_reason) == ("", "tool_calls")
    assert response.usage.output_tokens == 12 and not response.usage.estimated
    assert outcomes(fake_openai) == ["ok:tool_calls"]  # not retried: the call was billed
    assert screen is None or screen.seen == []


# --- 3. content as a list of parts ---------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["body", "stream"])
async def test_content_parts_are_joined(
    fake_openai: FakeOpenAI, pool: ClientPool, streamed: bool
) -> None:
    text = "Four, since two and two make four."
    fake_openai.enqueue(Reply(content=text, content_parts=True))
    screen = Screen() if streamed else None
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == text
    assert screen is None or (screen.shown == text and len(screen.seen) > 1)


# --- 4. a stream that stops short -------------------------------------------------------------


CUT_SHORT = [
    pytest.param(Reply(cut_after=2, done=False), id="no-finish-no-done"),
    pytest.param(Reply(cut_after=2, done=False, close="eof"), id="no-finish-closed-at-eof"),
    pytest.param(Reply(cut_after=2), id="done-without-finish"),
    pytest.param(Reply(done=False), id="finish-without-done"),
    pytest.param(Reply(done=False, close="eof"), id="finish-without-done-closed-at-eof"),
]


@pytest.mark.parametrize("cut", CUT_SHORT)
async def test_stream_cut_short_is_retried(
    fake_openai: FakeOpenAI, pool: ClientPool, cut: Reply
) -> None:
    fake_openai.enqueue(cut)
    screen = Screen()
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == ANSWER and response.finish_reason == "stop"
    assert outcomes(fake_openai) == ["cut", "ok"]
    assert screen.restarts == 0 and screen.shown == ANSWER


@pytest.mark.parametrize("cut", CUT_SHORT)
async def test_stream_cut_short_is_never_an_answer(
    fake_openai: FakeOpenAI, pool: ClientPool, cut: Reply
) -> None:
    fake_openai.enqueue(cut)
    with pytest.raises(ModelError, match=r"1 attempts: the stream ended"):
        await ask(make(fake_openai, pool, "    retries: 0\n"), Screen())


# --- 5. a stream dropped mid-answer -------------------------------------------------------------


async def test_dropped_stream_continues_seamlessly(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    fake_openai.enqueue(Reply(cut_after=2, close="drop"))
    screen = Screen()
    response = await ask(make(fake_openai, pool), screen)
    assert outcomes(fake_openai) == ["cut", "ok"]
    assert screen.restarts == 0
    assert "".join(t for t in screen.seen if t) == response.content == ANSWER  # nothing twice
    assert len(screen.seen) >= 2


async def test_dropped_stream_restarts_when_the_retry_differs(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    fake_openai.enqueue(Reply(content="Five, I think, or maybe not.", cut_after=1, close="drop"))
    fake_openai.enqueue(Reply(content="Four."))
    screen = Screen()
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == "Four."
    assert screen.restarts == 1
    first = screen.seen[: screen.seen.index(None)]
    assert "".join(t for t in first if t) == "Five, I think,"  # the first attempt's words, once
    assert screen.shown == "Four."


async def test_without_on_restart_nothing_is_streamed_twice(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    fake_openai.enqueue(Reply(content="Five, I think, or maybe not.", cut_after=1, close="drop"))
    fake_openai.enqueue(Reply(content="Four."))
    tokens: list[str] = []
    response = await make(fake_openai, pool).request(
        MESSAGES, RequestParams(on_token=tokens.append)
    )
    assert response.content == "Four." and "".join(tokens) == "Five, I think,"


# --- 6. no usage reported --------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["body", "stream"])
async def test_missing_usage_is_estimated(
    fake_openai: FakeOpenAI, pool: ClientPool, streamed: bool
) -> None:
    fake_openai.enqueue(Reply(content="x" * 40, reasoning="y" * 20, usage=False))
    response = await ask(make(fake_openai, pool), Screen() if streamed else None)
    usage = response.usage
    assert usage.estimated and response.trace == "y" * 20
    assert usage.output_tokens == 15  # (40 + 20) characters / 4
    prompt_chars = sum(len(m.content) for m in MESSAGES)
    assert prompt_chars / 4 <= usage.input_tokens <= prompt_chars / 4 + 4 * len(MESSAGES) + 1
    assert outcomes(fake_openai) == ["ok"]


# --- 7. a server that never finishes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "streamed"),
    [
        pytest.param(Fault(trickle=0.1), True, id="sse-comments"),
        pytest.param(Fault(trickle=0.1), False, id="json-whitespace"),
        pytest.param(Reply(byte_delay=0.05), False, id="one-byte-at-a-time"),
        pytest.param(Reply(byte_delay=0.2), True, id="slow-events"),
    ],
)
async def test_timeout_bounds_the_whole_attempt(
    fake_openai: FakeOpenAI, pool: ClientPool, behaviour: Fault | Reply, streamed: bool
) -> None:
    timeout, attempts = 0.6, 2
    for _ in range(attempts):
        fake_openai.enqueue(behaviour)
    model = make(fake_openai, pool, f"    timeout_s: {timeout}\n    retries: {attempts - 1}\n")
    started = time.monotonic()
    with pytest.raises(ModelError, match="timed out") as info:
        await ask(model, Screen() if streamed else None)
    elapsed = time.monotonic() - started
    assert elapsed < timeout * attempts + 2, elapsed  # each read came in time; the whole did not
    assert "timeout_s" in str(info.value) and "models.p" in str(info.value)
    assert len(fake_openai.requests) == attempts


# --- 8. <think> in streamed answers ------------------------------------------------------------


@pytest.mark.parametrize("style", ["think", "lone_think"])
async def test_reasoning_profile_never_streams_trace(
    fake_openai: FakeOpenAI, pool: ClientPool, style: TraceStyle
) -> None:
    fake_openai.configure_model("r", reasoning=True, trace_style=style)
    screen = Screen()
    model = make(fake_openai, pool, "    reasoning: true\n", model="r")
    response = await ask(model, screen)
    assert screen.restarts == 0 and screen.shown == response.content
    assert "TRACE" not in "".join(t for t in screen.seen if t)
    assert response.trace and "TRACE" in response.trace and "TRACE" not in response.content


@pytest.mark.parametrize("streamed", [False, True], ids=["body", "stream"])
@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think", "lone_think"])
async def test_every_trace_style_is_kept_apart(
    fake_openai: FakeOpenAI, pool: ClientPool, style: TraceStyle, streamed: bool
) -> None:
    fake_openai.configure_model("r", reasoning=True, trace_style=style)
    screen = Screen() if streamed else None
    response = await ask(make(fake_openai, pool, "    reasoning: true\n", model="r"), screen)
    assert response.content == "[r] answer: What is 2+2?"
    assert response.trace == "TRACE(r): thinking about it"
    assert screen is None or (screen.restarts == 0 and screen.shown == response.content)


async def test_generative_profile_streams_at_once_without_think_blocks(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    fake_openai.configure_model("w", trace_style="think")
    screen = Screen()
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == ANSWER and response.trace and "TRACE" in response.trace
    assert screen.restarts == 0 and len(screen.seen) > 1 and screen.shown == ANSWER
    assert "TRACE" not in "".join(t for t in screen.seen if t)


async def test_generative_profile_restarts_on_a_lone_closing_tag(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    fake_openai.configure_model("w", trace_style="lone_think")
    screen = Screen()
    response = await ask(make(fake_openai, pool), screen)
    assert response.content == ANSWER and response.trace and "TRACE" in response.trace
    assert screen.restarts == 1 and screen.shown == ANSWER  # the trace was shown, then withdrawn
    assert len(fake_openai.requests) == 1


def test_stream_is_held_for_reasoning_profiles_except_on_openai() -> None:
    spec = parse_workflow("name: t\nmodels:\n  r: {model: o3, reasoning: true}\n  w: {model: w}\n")
    pool = ClientPool()
    for url, profile, held in [
        ("https://api.openai.com/v1", "r", False),
        ("https://api.deepseek.com/v1", "r", True),
        ("http://127.0.0.1:8000/v1", "r", True),
        ("http://127.0.0.1:8000/v1", "w", False),
    ]:
        model = OpenAIChatModel(profile, spec.models[profile], pool.get(url, KEY), url)
        assert model.hold_stream is held, (url, profile)


# --- 9. nobody listening ------------------------------------------------------------------------


async def test_unreachable_endpoint_fails_fast(pool: ClientPool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # bound, never listening
        spec = parse_workflow("name: t\nmodels:\n  p: {model: w, retries: 1}\n")
        model = OpenAIChatModel("p", spec.models["p"], pool.get(url, KEY), url)
        started = time.monotonic()
        with pytest.raises(EndpointError) as info:
            await model.request(MESSAGES, RequestParams())
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "cannot reach" in message and "profile 'p' (w)" in message and "2 attempts" in message
    assert "base_url" in message and "OPENAI_BASE_URL" in message


async def test_server_that_drops_every_connection_is_not_unreachable(
    fake_openai: FakeOpenAI, pool: ClientPool
) -> None:
    for _ in range(2):
        fake_openai.enqueue(Fault(drop=True))
    with pytest.raises(ModelError, match="connection failed or was dropped"):
        await ask(make(fake_openai, pool, "    retries: 1\n"))
