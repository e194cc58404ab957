"""`provider: langchain` and `LangChainModel` with langchain-core's fake chat models: the spec,
usage and cost from `usage_metadata`, reasoning kept as the trace, streaming, structured output,
retries, and errors. The same class over a real socket is in test_langchain_openai.py."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from orchestrator import (
    CallRetried,
    EndpointError,
    Message,
    ModelError,
    ModelProfile,
    RequestParams,
    ResponseFormat,
    SpecError,
    Workflow,
    parse_workflow,
)
from orchestrator.models.langchain import LangChainModel, cache_identity, connect_langchain
from tests.clirun import run_cli

FAKES = "langchain_core.language_models.fake_chat_models"


def usage(inp: int, out: int, *, reasoning: int = 0, cached: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {"cache_read": cached},
        "output_token_details": {"reasoning": reasoning},
    }


def ask(model: LangChainModel, params: RequestParams | None = None) -> Any:
    import asyncio

    return asyncio.run(model.request([Message("user", "hi")], params or RequestParams()))


def test_usage_metadata_and_reasoning_blocks_are_read() -> None:
    reply = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "first I think"},
            {"type": "text", "text": "42"},
        ],
        usage_metadata=usage(100, 40, reasoning=30, cached=60),  # type: ignore[arg-type]
    )
    response = ask(LangChainModel(FakeMessagesListChatModel(responses=[reply]), profile="p"))
    assert (response.content, response.trace, response.finish_reason) == (
        "42",
        "first I think",
        "stop",
    )
    u = response.usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (
        100,
        60,
        40,
        30,
    )
    assert not u.estimated


THINKING = {"type": "thinking", "thinking": "deep thought", "signature": "x"}


@pytest.mark.parametrize(
    "reply",
    [
        AIMessage(content="done", additional_kwargs={"reasoning_content": "deep thought"}),
        AIMessage(content=[THINKING, {"type": "text", "text": "done"}]),
        AIMessage(content="<think>deep thought</think>done"),
    ],
    ids=["reasoning_content", "anthropic_thinking", "think_tags"],
)
def test_every_kind_of_trace_is_kept_apart(reply: AIMessage) -> None:
    response = ask(LangChainModel(FakeMessagesListChatModel(responses=[reply]), profile="p"))
    assert (response.content, response.trace) == ("done", "deep thought")
    assert response.usage.estimated  # no usage_metadata: estimated, and so marked


def test_cut_off_reply_reports_length() -> None:
    reply = AIMessage(content="", response_metadata={"stop_reason": "max_tokens"})
    response = ask(LangChainModel(FakeMessagesListChatModel(responses=[reply]), profile="p"))
    assert response.finish_reason == "length"


def test_streamed_answer_reaches_on_token() -> None:
    chat = GenericFakeChatModel(messages=iter(["the answer is here"]))
    shown: list[str] = []
    response = ask(LangChainModel(chat, profile="p"), RequestParams(on_token=shown.append))
    assert len(shown) > 1 and "".join(shown) == response.content == "the answer is here"


def test_structured_output_without_support_is_asked_plainly() -> None:
    # Fake models implement neither JSON schema nor tools: the answer is validated downstream.
    chat = GenericFakeChatModel(messages=iter(['{"a": 1}']))
    fmt = ResponseFormat("thing", {"type": "object", "properties": {"a": {"type": "integer"}}})
    response = ask(LangChainModel(chat, profile="p"), RequestParams(response_format=fmt))
    assert response.content == '{"a": 1}'


class Flaky(BaseChatModel):
    """Fails with `errors` in turn, then answers; counts its calls."""

    errors: list[Any] = Field(default_factory=list)
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        reply = AIMessage(content="ok", usage_metadata=usage(5, 1))  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    response = httpx.Response(status, headers={"retry-after": "0"}, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


async def test_retried_attempts_of_any_sdk_are_reported(tmp_path: Path) -> None:
    spec = parse_workflow(
        langchain_workflow(tmp_path, f"{FAKES}:FakeListChatModel", {"responses": ["x"]})
    )
    failures = [_status_error(503), httpx.ConnectError("refused")]
    chat = Flaky(errors=failures)
    model = LangChainModel(chat, profile="fake", spec=spec.models["fake"])
    wf = Workflow(spec, models={"fake": model}, home=tmp_path)
    events = [e async for e in wf.astream("a task")]
    retried = [e.attempt for e in events if isinstance(e, CallRetried)]
    assert [(a.purpose, a.reason, a.status, a.number) for a in retried] == [
        ("plan", "status", 503, 1),
        ("plan", "connection", None, 2),
    ]
    assert "HTTP 503" in retried[0].detail and retried[0].wait_s == 0  # retry-after: 0


def test_transient_failures_are_retried_and_refusals_are_not() -> None:
    profile = ModelProfile(model="m", retries=3)
    chat = Flaky(errors=[_status_error(503), httpx.ConnectError("refused"), _status_error(429)])
    response = ask(LangChainModel(chat, profile="p", spec=profile))
    assert response.content == "ok" and chat.calls == 4

    refused = Flaky(errors=[_status_error(401)])
    with pytest.raises(EndpointError, match=r"profile 'p' \(m\): HTTP 401.*models\.p\.kwargs"):
        ask(LangChainModel(refused, profile="p", spec=profile))
    assert refused.calls == 1

    broken = Flaky(errors=[RuntimeError("bad things")])
    with pytest.raises(ModelError, match="RuntimeError: bad things") as info:
        ask(LangChainModel(broken, profile="p", spec=profile))
    assert "attempts" not in str(info.value) and broken.calls == 1


def langchain_workflow(
    tmp_path: Path, chat_class: str, kwargs: dict[str, Any], extra: str = ""
) -> str:
    return textwrap.dedent(
        f"""\
        name: lc
        models:
          fake:
            provider: langchain
            class: {chat_class}
            model: fake-model
            kwargs: {kwargs!r}
            price: {{input: 1.0, output: 2.0}}
            {extra}
        """
    )


def test_a_workflow_runs_on_a_langchain_profile_from_yaml(tmp_path: Path) -> None:
    plan = '{"subproblems": [{"id": "s1", "kind": "generate", "task": "part", "depends_on": []}]}'
    text = langchain_workflow(
        tmp_path, f"{FAKES}:FakeListChatModel", {"responses": [plan, "part done", "final"]}
    )
    spec = parse_workflow(text)
    assert spec.models["fake"].chat_class == f"{FAKES}:FakeListChatModel"
    result = Workflow(spec, home=tmp_path).run("a task")
    assert result.status == "completed" and result.output == "final"
    fake = result.usage.by_profile["fake"]
    assert fake.calls == 3 and fake.model == "fake-model"
    assert fake.cost_usd > 0  # estimated usage, priced (and charged its worst case)


def test_priced_from_usage_metadata_in_a_run(tmp_path: Path) -> None:
    plan = '{"subproblems": [{"id": "s1", "kind": "reason", "task": "x", "depends_on": []}]}'
    replies = [
        AIMessage(content=plan, usage_metadata=usage(1000, 100)),  # type: ignore[arg-type]
        AIMessage(
            content=[{"type": "reasoning", "reasoning": "hmm"}, {"type": "text", "text": "s1"}],
            usage_metadata=usage(2000, 500, reasoning=400, cached=1000),  # type: ignore[arg-type]
        ),
        AIMessage(content="final", usage_metadata=usage(3000, 200)),  # type: ignore[arg-type]
    ]
    spec = parse_workflow(
        langchain_workflow(tmp_path, f"{FAKES}:FakeListChatModel", {"responses": ["unused"]})
    )
    chat = FakeMessagesListChatModel(responses=replies)
    model = LangChainModel(chat, profile="fake", spec=spec.models["fake"])
    result = Workflow(spec, models={"fake": model}, home=tmp_path).run("a task")
    assert result.status == "completed" and result.output == "final"
    assert result.subproblems[0].trace == "hmm" and result.subproblems[0].output == "s1"
    fake = result.usage.by_profile["fake"]
    assert (fake.calls, fake.input_tokens, fake.cached_input_tokens) == (3, 6000, 1000)
    assert (fake.output_tokens, fake.reasoning_tokens) == (800, 400)
    # cached input is charged at `input` (cached_input defaults to it): 6000 * 1 + 800 * 2
    assert fake.cost_usd == pytest.approx((6000 * 1.0 + 800 * 2.0) / 1e6)


@pytest.mark.parametrize(
    ("chat_class", "extra", "expected"),
    [
        ("no_such_pkg.chat:Model", "", "cannot import 'no_such_pkg.chat'"),
        (f"{FAKES}:Nope", "", "has no 'Nope'"),
        ("pathlib:Path", "", "is not a LangChain chat model"),
        ("just-a-name", "", "expected package.module:ClassName"),
        (f"{FAKES}:FakeListChatModel", "base_url: http://x", "takes base_url in kwargs"),
    ],
)
def test_bad_langchain_profiles_are_spec_errors(
    tmp_path: Path, chat_class: str, extra: str, expected: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_workflow(langchain_workflow(tmp_path, chat_class, {}, extra), file="wf.yaml")
    message = str(info.value)
    assert "models.fake" in message and expected in message and "\n" not in message


def test_class_and_kwargs_belong_to_langchain() -> None:
    with pytest.raises(SpecError, match="needs class"):
        parse_workflow("name: t\nmodels: {m: {model: x, provider: langchain}}")
    with pytest.raises(SpecError, match="class is for provider: langchain"):
        parse_workflow(f"name: t\nmodels: {{m: {{model: x, class: '{FAKES}:FakeListChatModel'}}}}")
    with pytest.raises(SpecError, match="kwargs is for provider: langchain"):
        parse_workflow("name: t\nmodels: {m: {model: x, provider: local, kwargs: {a: 1}}}")


def test_cli_validate_names_the_profile_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(langchain_workflow(tmp_path, "langchain_nowhere:ChatNowhere", {}))
    done = run_cli("validate", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = (done.stderr + done.stdout).strip().splitlines()
    assert len(lines) == 1 and "models.fake.class" in lines[0], lines
    assert "pip install langchain-nowhere" in lines[0]


def test_kwargs_the_class_refuses_name_the_profile_and_hide_secrets() -> None:
    secret = "sk-very-secret-key-0001"
    profile = ModelProfile.model_validate(
        {
            "model": "m",
            "provider": "langchain",
            "class": f"{FAKES}:FakeListChatModel",
            "kwargs": {"responses": 3, "api_key": secret},
        }
    )
    with pytest.raises(EndpointError) as info:
        connect_langchain("fake", profile)
    message = str(info.value)
    assert message.startswith(
        "profile 'fake' (m): FakeListChatModel refused its kwargs: responses: Input should be"
    )
    assert secret not in message and "models.fake.kwargs" in message


def test_cache_identity_keeps_settings_and_drops_secrets() -> None:
    profile = ModelProfile.model_validate(
        {
            "model": "m",
            "provider": "langchain",
            "class": f"{FAKES}:FakeListChatModel",
            "kwargs": {"api_key": "sk-secret-cache-0001", "max_tokens": 64},
        }
    )
    identity = cache_identity(profile)
    assert "sk-secret" not in identity and '"max_tokens": 64' in identity
    assert identity.startswith(f"langchain:{FAKES}:FakeListChatModel:")
