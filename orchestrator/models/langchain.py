"""Any LangChain chat model as a profile (`provider: langchain`): Anthropic, Gemini, Bedrock...

    models:
      claude:
        provider: langchain
        class: langchain_anthropic:ChatAnthropic
        model: claude-sonnet-4-5          # passed as `model=` when the class takes one
        kwargs: {max_tokens: 4096, api_key: "${ANTHROPIC_API_KEY}"}

`LangChainModel` adapts a `BaseChatModel` to orchestrator's `ChatModel`, so the same wrappers
price, budget and record its calls. Tokens come from the reply's `usage_metadata` (estimated
when a model reports none); reasoning comes from `reasoning`/`thinking` content blocks, an
`additional_kwargs` `reasoning_content`, or `<think>` tags, and is kept as the trace. The class's
own retries are turned off (`max_retries=0` where it has the setting) so that, as for the HTTP
client, one loop decides: transient failures (5xx, 408/409/429, dropped connections, timeouts of
a whole attempt) are retried `retries` times with backoff and `Retry-After`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import httpx2
import openai
import pydantic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..errors import EndpointError, ModelError, redact, register_secret
from ..spec import ModelProfile
from .base import ChatModel, Message, ModelResponse, RequestParams, ResponseFormat, TokenUsage
from .openai import sampling
from .retry import TRANSIENT_STATUS, AttemptTimeout, AttemptWatch, Backoff, is_transient
from .trace import StreamFilter
from .wire import TokenRelay, content_parts, estimate_usage, join_trace

__all__ = ["LangChainModel", "cache_identity", "chat_class", "connect_langchain"]

# Keys whose values are secrets wherever they appear in `kwargs` (never shown in a message).
_SECRET_WORDS = ("key", "token", "secret", "password", "credential")
# The cap's name differs by package: ChatOpenAI/ChatAnthropic `max_tokens`, Gemini's alias.
_CAP_FIELDS = ("max_tokens", "max_output_tokens", "max_completion_tokens")
_LENGTH = frozenset({"length", "max_tokens", "max_output_tokens", "model_length"})
_REFUSED = frozenset({400, 401, 403, 404, 422})
_DETAIL_LIMIT = 300


def chat_class(ref: str) -> type[BaseChatModel]:
    """The class `package.module:ClassName` names; ValueError saying what is wrong."""
    module_name, _, class_name = ref.partition(":")
    if not module_name or not class_name.isidentifier():
        raise ValueError(f"expected package.module:ClassName, got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = module_name.split(".")[0].replace("_", "-")
        raise ValueError(
            f"cannot import {module_name!r} ({exc}); install it, e.g. pip install {package}"
        ) from None
    found = getattr(module, class_name, None)
    if found is None:
        raise ValueError(f"module {module_name!r} has no {class_name!r}")
    if not (isinstance(found, type) and issubclass(found, BaseChatModel)):
        raise ValueError(f"{ref} is not a LangChain chat model (a BaseChatModel subclass)")
    return found


def _field(cls: type[BaseChatModel], *names: str) -> str | None:
    """The class's field called (or aliased) one of `names`, first match; None if it has none."""
    for name in names:
        for field_name, info in cls.model_fields.items():
            if name in (field_name, info.alias):
                return field_name
    return None


def connect_langchain(name: str, profile: ModelProfile) -> LangChainModel:
    """Build profile `name`'s chat model from its class and kwargs."""
    assert profile.chat_class is not None, "the spec requires class for provider: langchain"
    where = f"profile '{name}' ({profile.model})"
    try:
        cls = chat_class(profile.chat_class)
    except ValueError as exc:
        raise EndpointError(f"{where}: class: {exc}", profile=name, model=profile.model) from None
    kwargs = dict(profile.kwargs)
    _register_secrets(kwargs)
    given = {_field(cls, key) or key for key in kwargs}
    defaults = {"model": profile.model, "max_retries": 0, "stream_usage": True}
    for key, value in defaults.items():
        field = _field(cls, key)
        if field is not None and field not in given:
            kwargs[field] = value
    try:
        chat = cls(**kwargs)
    except Exception as exc:  # whatever the class raises: a bad kwarg, a missing key
        detail = redact(_first_line(exc))
        raise EndpointError(
            f"{where}: {cls.__name__} refused its kwargs: {detail[:_DETAIL_LIMIT]}; check "
            f"models.{name}.kwargs",
            profile=name,
            model=profile.model,
        ) from None
    return LangChainModel(chat, profile=name, spec=profile)


def cache_identity(profile: ModelProfile) -> str:
    """Where a langchain profile's answers come from, for the response cache's key: the class
    and its settings, secrets left out."""
    public = {k: v for k, v in profile.kwargs.items() if not _is_secret(k, v)}
    return f"langchain:{profile.chat_class}:{json.dumps(public, sort_keys=True, default=str)}"


def _first_line(exc: Exception) -> str:
    """What went wrong, in one line: pydantic's errors by field, else the message's first line."""
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'kwargs'}: {e['msg']}" for e in exc.errors()[:3]
        )
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_secret(key: str, value: object) -> bool:
    """A text under a key named like a secret (`api_key`, `aws_secret_access_key`...)."""
    return isinstance(value, str) and any(word in key.lower() for word in _SECRET_WORDS)


def _register_secrets(value: object, key: str = "") -> None:
    if isinstance(value, Mapping):
        for inner_key, inner in value.items():
            _register_secrets(inner, str(inner_key))
    elif _is_secret(key, value):
        register_secret(str(value))


def to_langchain(messages: list[Message]) -> list[BaseMessage]:
    kinds = {"instruction": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in messages]


def _trace_of(message: BaseMessage) -> tuple[str, str]:
    """(text, trace) of a reply: reasoning blocks, `reasoning_content`, OpenAI summaries."""
    text, thinking = content_parts(message.content)
    summaries = []
    if isinstance(message.content, list):
        for part in message.content:
            if isinstance(part, dict) and part.get("type") == "reasoning":
                summaries += [s.get("text", "") for s in part.get("summary") or ()]
    extra = message.additional_kwargs
    field = next(
        (v for k in ("reasoning_content", "reasoning") if isinstance(v := extra.get(k), str)), ""
    )
    return text, "\n\n".join(t for t in (field, thinking, *summaries) if t)


def usage_of(message: BaseMessage) -> TokenUsage | None:
    """Billed tokens from `usage_metadata`; None when the model reported none."""
    meta = getattr(message, "usage_metadata", None)
    if not meta:
        return None
    details_in = meta.get("input_token_details") or {}
    details_out = meta.get("output_token_details") or {}
    return TokenUsage(
        input_tokens=int(meta.get("input_tokens") or 0),
        cached_input_tokens=int(details_in.get("cache_read") or 0),
        output_tokens=int(meta.get("output_tokens") or 0),
        reasoning_tokens=int(details_out.get("reasoning") or 0),
    )


def finish_of(message: BaseMessage, answer: str) -> str:
    """One finish reason across providers (OpenAI, Anthropic, Gemini, Bedrock spell it apart)."""
    meta = message.response_metadata
    raw = next(
        (meta[k] for k in ("finish_reason", "stop_reason", "stopReason") if meta.get(k)), "stop"
    )
    reason = str(raw).lower()
    if reason in _LENGTH:
        return "length"
    if getattr(message, "tool_calls", None) and not answer:
        return "tool_calls"  # orchestrator sends no tools: not an answer (a wrapper says so)
    return "stop" if reason in ("end_turn", "stop_sequence", "complete") else reason


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK's error carries (openai, anthropic, httpx...), if any."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """Transient, whichever SDK raised it: a retryable status, or the connection failed."""
    if is_transient(exc):
        return True
    status = status_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUS or status >= 500
    names = {cls.__name__ for cls in type(exc).__mro__}
    # SDKs built like openai's (anthropic, mistral, groq...) name their network failures so.
    sdk_network = {"APIConnectionError", "APITimeoutError", "ServiceUnavailableError"}
    return isinstance(exc, ConnectionError | httpx.TransportError) or bool(names & sdk_network)


def _as_status_error(exc: BaseException) -> BaseException:
    """Another SDK's HTTP error in openai's shape, so a failed attempt is reported by status."""
    status = status_of(exc)
    if status is None or isinstance(exc, openai.APIStatusError):
        return exc
    detail = redact(str(exc).strip() or type(exc).__name__)[:_DETAIL_LIMIT]
    # openai's errors carry the response of its HTTP layer (httpx2 in openai 3.x).
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://langchain.invalid"))
    return openai.APIStatusError(detail, response=response, body={"error": {"message": detail}})


async def _report_retry(watch: AttemptWatch, state: RetryCallState) -> None:
    """tenacity's hook: an attempt failed and another follows after `upcoming_sleep`."""
    exc = state.outcome.exception() if state.outcome else None
    if exc is not None:
        await watch.failed(_as_status_error(exc), wait_s=state.upcoming_sleep)


class LangChainModel(ChatModel):
    """A LangChain chat model behind a profile.

    Plug one in directly with `Workflow(spec, models={"name": LangChainModel(chat)})`, or let
    `provider: langchain` build it from the profile. `spec` gives the timeout, retries and
    sampling settings (defaults: a generative profile's). Build a plugged-in instance with
    `max_retries=0` (where the class has it) so the profile's retries are the only ones:
    its SDK client is made when the instance is, so it cannot be turned off afterwards.
    """

    def __init__(
        self, chat: BaseChatModel, *, profile: str = "", spec: ModelProfile | None = None
    ) -> None:
        self.chat = chat
        self.spec = spec or ModelProfile(model=profile or type(chat).__name__)
        self.profile = profile
        self.model = self.spec.model

    def __repr__(self) -> str:
        return f"LangChainModel({type(self.chat).__name__}, profile={self.profile!r})"

    @property
    def _where(self) -> str:
        return f"profile '{self.profile}' ({self.model})"

    def configured(self, params: RequestParams) -> BaseChatModel:
        """The chat model with this request's cap, temperature and effort, where it has them."""
        temperature, effort = sampling(self.spec, params)
        wanted = {
            _CAP_FIELDS: params.max_output_tokens,
            ("temperature",): temperature,
            ("reasoning_effort",): effort,
        }
        update: dict[str, Any] = {}
        for names, value in wanted.items():
            field = _field(type(self.chat), *names)
            if value is not None and field and getattr(self.chat, field, None) != value:
                update[field] = value
        return self.chat.model_copy(update=update) if update else self.chat

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        chat = self.configured(params)
        relay = TokenRelay(params.on_token, params.on_restart) if params.on_token else None
        attempts = self.spec.retries + 1
        watch = AttemptWatch(self.profile, self.model, params.purpose, params.step, attempts)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(attempts),
            wait=Backoff(),
            reraise=True,
            before_sleep=functools.partial(_report_retry, watch),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    watch.begin()
                    return await self._attempt(chat, messages, params, relay)
        except Exception as exc:
            if is_retryable(exc):
                await watch.failed(_as_status_error(exc))
            raise self._failure(exc) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(
        self,
        chat: BaseChatModel,
        messages: list[Message],
        params: RequestParams,
        relay: TokenRelay | None,
    ) -> ModelResponse:
        started_at, clock = time.time(), time.monotonic()
        limit = self.spec.effective_timeout_s
        try:
            async with asyncio.timeout(limit):
                if params.response_format is not None:
                    reply, structured = await self._structured_call(chat, messages, params)
                elif relay is not None:
                    reply, structured = await self._stream(chat, messages, relay), None
                else:
                    reply, structured = await chat.ainvoke(to_langchain(messages)), None
        except TimeoutError:
            raise AttemptTimeout(
                f"timed out: no complete reply within timeout_s={limit:g}"
            ) from None
        text, field_trace = _trace_of(reply)
        answer, trace = join_trace(text, field_trace)
        if structured is not None:
            answer = structured
        if relay is not None:
            relay.show(answer, final=True)
        usage = usage_of(reply)
        if usage is None:
            body: dict[str, Any] = {"messages": [{"content": m.content} for m in messages]}
            if params.response_format is not None:
                body["response_format"] = params.response_format.schema
            usage = estimate_usage(body, answer, trace)
        return ModelResponse(
            answer,
            trace,
            finish_of(reply, answer),
            usage,
            latency_s=time.monotonic() - clock,
            started_at=started_at,
        )

    async def _stream(
        self, chat: BaseChatModel, messages: list[Message], relay: TokenRelay
    ) -> BaseMessage:
        """Stream the reply, showing its visible text as it grows; the whole reply at the end."""
        shown = StreamFilter()
        total: Any = None
        async for chunk in chat.astream(to_langchain(messages)):
            total = chunk if total is None else total + chunk
            text, _ = content_parts(chunk.content)
            if text:
                relay.show(shown.feed(text))
        return total if total is not None else AIMessage(content="")

    async def _structured_call(
        self, chat: BaseChatModel, messages: list[Message], params: RequestParams
    ) -> tuple[BaseMessage, str | None]:
        """Ask for the schema the way the class supports (JSON schema, else tool calling);
        a class with neither is asked plainly, and the answer is validated as any other."""
        fmt = params.response_format
        assert fmt is not None
        runnable = self._structured_runnable(chat, fmt)
        if runnable is None:
            return await chat.ainvoke(to_langchain(messages)), None
        out = await runnable.ainvoke(to_langchain(messages))
        parsed = out.get("parsed")
        answer = json.dumps(parsed) if isinstance(parsed, dict | list) else None
        return out["raw"], answer

    @staticmethod
    def _structured_runnable(chat: BaseChatModel, fmt: ResponseFormat) -> Any:
        """`with_structured_output` returning the raw reply too (for its usage); None if the
        class supports no way of asking for a schema."""
        schema = {"title": fmt.name, **fmt.schema}
        for options in ({"method": "json_schema", "strict": fmt.strict}, {}):
            try:
                return chat.with_structured_output(schema, include_raw=True, **options)
            except (NotImplementedError, ValueError, TypeError):
                continue
        return None

    def _failure(self, exc: Exception) -> Exception:
        """The orchestrator error for a call that failed for good."""
        attempts = self.spec.retries + 1
        detail = redact(str(exc).strip() or type(exc).__name__)[:_DETAIL_LIMIT]
        status = status_of(exc)
        if status in _REFUSED:
            return EndpointError(
                f"{self._where}: HTTP {status}: {detail}; check models.{self.profile}.kwargs "
                "(key, model name, settings)",
                profile=self.profile,
                model=self.model,
                status=status,
            )
        retried = f" after {attempts} attempts" if is_retryable(exc) else ""
        return ModelError(
            f"{self._where} failed{retried}: {type(exc).__name__}: {detail}",
            profile=self.profile,
            model=self.model,
        )
