"""`provider: langchain` with langchain-openai's real `ChatOpenAI`, over a real socket to the
scripted OpenAI-compatible server: plans as JSON schema, streamed answers with usage, reasoning
traces, retries, refusals, and every billed call in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import CallRetried, EndpointError, RunResult, Workflow, parse_workflow
from tests.fakeserver import FakeOpenAI, Fault, Reply

WORKFLOW = """
name: lc-openai
models:
  thinker:
    provider: langchain
    class: langchain_openai:ChatOpenAI
    model: think-model
    reasoning: true
    max_output_tokens: 300
    retries: %(retries)d
    kwargs: {base_url: "%(url)s", api_key: sk-test-langchain-0001}
    price: {input: 2.0, output: 8.0}
  writer:
    provider: langchain
    class: langchain_openai:ChatOpenAI
    model: write-model
    retries: %(retries)d
    kwargs: {base_url: "%(url)s", api_key: sk-test-langchain-0001, temperature: 0.3}
    price: {input: 0.1, output: 0.4}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "think hard", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "write it", "depends_on": ["s1"]},
    ]
}


def workflow(server: FakeOpenAI, tmp_path: Path, retries: int = 2) -> Workflow:
    text = WORKFLOW % {"url": server.base_url, "retries": retries}
    return Workflow(parse_workflow(text), home=tmp_path)


@pytest.fixture
def server(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.configure_model("think-model", reasoning=True, trace_style="think")
    fake_openai.set_plan(PLAN)
    return fake_openai


def billed_by_model(server: FakeOpenAI) -> dict[str, tuple[int, int, int]]:
    totals: dict[str, tuple[int, int, int]] = {}
    for model, usage in server.billed:
        inp, out, reasoning = totals.get(model, (0, 0, 0))
        details = usage.get("completion_tokens_details") or {}
        totals[model] = (
            inp + usage["prompt_tokens"],
            out + usage["completion_tokens"],
            reasoning + (details.get("reasoning_tokens") or 0),
        )
    return totals


def profile_totals(result: RunResult, name: str) -> tuple[int, int, int]:
    p = result.usage.by_profile[name]
    return p.input_tokens, p.output_tokens, p.reasoning_tokens


async def test_a_run_on_chat_openai(server: FakeOpenAI, tmp_path: Path) -> None:
    result = await workflow(server, tmp_path).arun("Choose a database")
    assert result.status == "completed", result.error
    requests = server.requests
    assert [r.model for r in requests] == ["write-model", "think-model"] + ["write-model"] * 2
    plan_request = requests[0]
    fmt: dict[str, Any] = plan_request.body["response_format"]
    assert plan_request.is_plan and fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "plan" and fmt["json_schema"]["strict"] is True
    think = requests[1].body
    assert think["max_completion_tokens"] == 300 and "temperature" not in think
    assert requests[2].body["temperature"] == 0.3
    synth = requests[-1].body
    assert synth["stream"] is True and synth["stream_options"] == {"include_usage": True}
    # The trace is kept on the step, never in the answer or a later prompt.
    s1 = result.subproblems[0]
    assert s1.trace and "TRACE(think-model)" in s1.trace and "TRACE" not in s1.output
    assert all("TRACE" not in str(r.body) for r in requests[2:])
    assert result.output.startswith("[write-model] answer")
    # Tokens as the server billed them, priced at the profiles' prices.
    billed = billed_by_model(server)
    assert profile_totals(result, "thinker") == billed["think-model"]
    assert profile_totals(result, "writer") == billed["write-model"]
    thinker = result.usage.by_profile["thinker"]
    assert thinker.reasoning_tokens == 50
    expected = (thinker.input_tokens * 2.0 + thinker.output_tokens * 8.0) / 1e6
    assert thinker.cost_usd == pytest.approx(expected)


async def test_transient_errors_are_retried_once_each(server: FakeOpenAI, tmp_path: Path) -> None:
    server.enqueue(Fault(status=500), model="think-model")
    server.enqueue(Fault(status=429, headers={"Retry-After": "0"}), model="think-model")
    events = [e async for e in workflow(server, tmp_path).astream("task")]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.status == "completed", result.error
    retried = [e.attempt for e in events if isinstance(e, CallRetried)]
    assert [(a.profile, a.reason, a.status, a.number) for a in retried] == [
        ("thinker", "status", 500, 1),
        ("thinker", "status", 429, 2),
    ]
    assert retried[1].wait_s == 0  # Retry-After: 0 honoured
    think = [r for r in server.requests if r.model == "think-model"]
    assert [r.outcome for r in think] == ["fault:500", "fault:429", "ok"]
    assert result.usage.by_profile["thinker"].calls == 1  # failed attempts are not billed


async def test_retries_run_out_with_a_message(server: FakeOpenAI, tmp_path: Path) -> None:
    for _ in range(2):
        server.enqueue(Fault(status=503), model="think-model")
    result = await workflow(server, tmp_path, retries=1).arun("task")
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "ModelError"
    assert "profile 'thinker' (think-model) failed after 2 attempts" in result.error.message


async def test_refused_key_is_an_endpoint_error(server: FakeOpenAI, tmp_path: Path) -> None:
    echo = {"error": {"message": "Incorrect API key provided: sk-test-langchain-0001."}}
    server.enqueue(Fault(status=401, body=echo), model="write-model")
    with pytest.raises(EndpointError) as info:
        await workflow(server, tmp_path).arun("task")
    message = str(info.value)
    assert message.startswith("profile 'writer' (write-model): HTTP 401")
    assert "sk-test-langchain" not in message and "models.writer.kwargs" in message
    assert len(server.requests) == 1  # a refusal is not retried


async def test_cut_off_reasoning_is_asked_again_and_both_calls_billed(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.enqueue(Reply(content="", finish_reason="length"), model="think-model")
    result = await workflow(server, tmp_path).arun("task")
    assert result.status == "completed", result.error
    think = [r for r in server.requests if r.model == "think-model"]
    assert [r.body["max_completion_tokens"] for r in think] == [300, 600]
    assert result.usage.by_profile["thinker"].calls == 2
    assert profile_totals(result, "thinker") == billed_by_model(server)["think-model"]


async def test_identical_runs_are_answered_from_the_cache(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    text = WORKFLOW % {"url": server.base_url, "retries": 0}
    first = await Workflow(parse_workflow(text), home=tmp_path, cache=True).arun("same task")
    sent = len(server.requests)
    again = await Workflow(parse_workflow(text), home=tmp_path, cache=True).arun("same task")
    assert first.status == again.status == "completed" and again.output == first.output
    assert len(server.requests) == sent == 4  # the second run sent nothing
    assert again.usage.cost_usd == 0 and first.usage.cost_usd > 0
