"""`orchestrator serve`'s OpenAI-compatible endpoints, driven by the real clients (the openai
SDK, curl, LangChain's ChatOpenAI) over real sockets on 127.0.0.1; the models behind the
workflow are the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from orchestrator.serve.chat import AnswerText
from tests.conftest import TEST_KEY
from tests.fakeserver import FakeOpenAI, Fault
from tests.test_cli_stream import FINAL, LONG, drop_first_stream
from tests.test_cli_stream import WORKFLOW as STREAM_WORKFLOW
from tests.test_serve_support import KEY, PLAN, serving, write_workflow


@pytest.fixture
def base(openai_env: FakeOpenAI, tmp_path: Path) -> Iterator[str]:
    openai_env.configure_model("think-model", reasoning=True)
    openai_env.set_plan(PLAN)
    with serving([write_workflow(tmp_path)]) as url:
        yield url


def client(base: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)


def billed_tokens(server: FakeOpenAI) -> tuple[int, int]:
    usage = [u for _, u in server.billed]
    return sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)


def test_models_are_the_workflows(base: str) -> None:
    models = client(base).models.list()
    assert [m.id for m in models.data] == ["served"]
    assert models.data[0].object == "model" and models.data[0].owned_by == "orchestrator"


def test_completion_carries_the_answer_usage_cost_and_run_id(
    base: str, fake_openai: FakeOpenAI
) -> None:
    raw = client(base).chat.completions.with_raw_response.create(
        model="served",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "an earlier question"},
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": "write the brief"},
        ],
    )
    completion = raw.parse()
    run_id = raw.headers["x-orchestrator-run-id"]
    assert completion.id == f"chatcmpl-{run_id}"
    answer = completion.choices[0].message.content
    assert answer and answer.startswith("[write-model] answer:")
    assert completion.choices[0].finish_reason == "stop"
    # The task is the last user message, and only that.
    plan_request = next(r for r in fake_openai.requests if r.is_plan)
    assert "write the brief" in str(plan_request.body) and "earlier" not in str(plan_request.body)
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == billed_tokens(fake_openai)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens
    extra = usage.model_extra or {}
    assert extra["cost_usd"] > 0
    assert (completion.model_extra or {})["orchestrator"] == {
        "run_id": run_id,
        "status": "completed",
    }
    run = httpx.get(f"{base}/runs/{run_id}").json()
    assert run["status"] == "completed" and run["output"] == answer
    assert run["cost_usd"] == extra["cost_usd"]


def test_streamed_completion_matches_the_answer(base: str, fake_openai: FakeOpenAI) -> None:
    stream = client(base).chat.completions.create(
        model="served",
        messages=[{"role": "user", "content": "write the brief"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    pieces = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # streamed token by token, not in one piece at the end
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == billed_tokens(fake_openai)
    run_id = chunks[0].id.removeprefix("chatcmpl-")
    run = httpx.get(f"{base}/runs/{run_id}").json()
    assert run["status"] == "completed" and text == run["output"]
    assert (last.usage.model_extra or {})["cost_usd"] == run["cost_usd"]


def test_no_usage_chunk_unless_asked(base: str) -> None:
    chunks = list(
        client(base).chat.completions.create(
            model="served", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_errors_in_openais_shape(base: str) -> None:
    c = client(base)
    with pytest.raises(openai.NotFoundError) as missing:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    body = missing.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found"
    assert body["param"] == "model" and "nope" in body["message"]
    with pytest.raises(openai.BadRequestError) as empty:
        c.chat.completions.create(model="served", messages=[{"role": "user", "content": " "}])
    assert isinstance(empty.value.body, dict) and empty.value.body["param"] == "messages"
    for raw, param in [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "served"}', "messages"),
        (b'{"model": "served", "messages": []}', "messages"),
        (b'{"model": 3, "messages": [{"role": "user", "content": "x"}]}', "model"),
    ]:
        r = httpx.post(f"{base}/v1/chat/completions", content=raw)
        assert r.status_code == 400, raw
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error" and error["param"] == param
    gone = httpx.get(f"{base}/v2/nothing")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    wrong = httpx.put(f"{base}/v1/models")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_a_failed_run_is_a_502_naming_the_run(base: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=500), model="think-model")
    with pytest.raises(openai.InternalServerError) as failed:
        client(base).chat.completions.create(
            model="served", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502
    run_id = failed.value.response.headers["x-orchestrator-run-id"]
    message = failed.value.message
    assert run_id in message and f"POST /runs/{run_id}/resume" in message
    run = httpx.get(f"{base}/runs/{run_id}").json()
    assert run["status"] == "failed"
    assert {s["id"] for s in run["subproblems"]} == {"fast1", "slow", "last"}
    assert run["error"]["message"] in message


def test_a_failed_streamed_run_ends_with_an_error(base: str, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault(status=500), model="think-model")
    stream = client(base).chat.completions.create(
        model="served", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="ended failed"):
        list(stream)


def test_langchain_chat_openai(base: str) -> None:
    llm = ChatOpenAI(
        base_url=f"{base}/v1", api_key="unused", model="served", max_retries=0, timeout=60
    )
    message = llm.invoke("write the brief")
    assert str(message.content).startswith("[write-model] answer:")
    assert message.usage_metadata and message.usage_metadata["total_tokens"] > 0
    streamed = "".join(str(chunk.content) for chunk in llm.stream("write the brief"))
    assert streamed == message.content


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(base: str) -> None:
    def curl(*args: str) -> str:
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "60", *args], capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    body = json.dumps({"model": "served", "messages": [{"role": "user", "content": "hi"}]})
    plain = json.loads(
        curl(f"{base}/v1/chat/completions", "-H", "Content-Type: application/json", "-d", body)
    )
    assert plain["object"] == "chat.completion" and plain["usage"]["cost_usd"] > 0
    streamed = curl(
        "-N",
        f"{base}/v1/chat/completions",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({**json.loads(body), "stream": True}),
    )
    lines = [line for line in streamed.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    models = json.loads(curl(f"{base}/v1/models"))
    assert models["object"] == "list" and models["data"][0]["id"] == "served"


def test_key_is_required_and_never_shown(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    openai_env.set_plan(PLAN)
    with serving([write_workflow(tmp_path)], api_key=KEY) as base:
        with pytest.raises(openai.AuthenticationError) as refused:
            client(base, "wrong-key").models.list()
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "invalid_api_key"
        assert "wrong-key" not in refused.value.response.text
        for headers in ({}, {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"}):
            r = httpx.get(f"{base}/runs", headers=headers)
            assert r.status_code == 401 and KEY not in r.text
        good = client(base, KEY)
        assert [m.id for m in good.models.list().data] == ["served"]
        completion = good.chat.completions.create(
            model="served", messages=[{"role": "user", "content": "hi"}]
        )
        assert KEY not in completion.model_dump_json()
        metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert metrics.status_code == 200 and KEY not in metrics.text
        assert httpx.get(f"{base}/metrics").status_code == 401


def test_an_endpoint_that_refuses_is_a_502_without_its_key(
    base: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Fault(status=401), model="write-model")  # the planner's endpoint
    with pytest.raises(openai.InternalServerError) as refused:
        client(base).chat.completions.create(
            model="served", messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.status_code == 502
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "EndpointError"
    assert "writer" in body["message"] and TEST_KEY not in refused.value.response.text
    run_id = refused.value.response.headers["x-orchestrator-run-id"]
    assert TEST_KEY not in httpx.get(f"{base}/runs/{run_id}").text
    events = httpx.get(f"{base}/runs/{run_id}/events").text
    assert "event: run_error" in events and TEST_KEY not in events


@pytest.mark.parametrize(
    ("first", "retried"), [(LONG, LONG), (LONG, FINAL)], ids=["same-text", "different-text"]
)
def test_a_restarted_answer_streams_sensibly(
    openai_env: FakeOpenAI, tmp_path: Path, first: str, retried: str
) -> None:
    drop_first_stream(openai_env, first, retried)
    with serving([write_workflow(tmp_path, "stream", STREAM_WORKFLOW)]) as base:
        chunks = list(
            client(base).chat.completions.create(
                model="stream", messages=[{"role": "user", "content": "How many?"}], stream=True
            )
        )
    marks = [
        i
        for i, c in enumerate(chunks)
        if ((c.model_extra or {}).get("orchestrator") or {}).get("answer_restarted")
    ]
    after = chunks[marks[-1] + 1 :] if marks else chunks
    text = "".join(c.choices[0].delta.content or "" for c in after if c.choices)
    assert text == retried  # what came after the last restart mark is the answer, once
    assert bool(marks) == (first != retried)  # the same text again is not sent again


def test_answer_text_sends_each_character_once() -> None:
    text = AnswerText()
    assert text.token("Five, ") == (False, "Five, ")
    text.restart()
    assert text.token("Fi") == (False, "")  # repeats what was sent: held back
    assert text.token("ve, I think") == (False, "I think")  # beyond it: only the new part
    text.restart()
    assert text.token("Four") == (True, "Four")  # a different answer: restarts, whole
    assert text.rest("Four.") == "."
    assert text.rest("Something else") == ""
