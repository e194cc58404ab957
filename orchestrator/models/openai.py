"""The one OpenAI-compatible client: request mapping, response parsing, retries, usage.

Every HTTP call goes through `openai.AsyncOpenAI` with `max_retries=0`: tenacity is the only
retry loop, so backoff and `Retry-After` are decided in one place.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ..budget import Budget, input_token_bound
from ..errors import (
    EndpointError,
    ModelError,
    OrchestratorError,
    TruncatedError,
    register_secret,
)
from ..spec import ModelProfile
from .base import CallRecord, ChatModel, Message, ModelResponse, ResponseFormat, TokenUsage
from .pricing import cost_usd, worst_case_usd
from .trace import StreamFilter, split_trace

OPENAI_URL = "https://api.openai.com/v1"
# A reasoning model's cap when the profile gives none: it must always be sent (issue: a
# reasoning model that thinks without a cap can bill tens of thousands of tokens).
DEFAULT_REASONING_CAP = 16_000
# Cut-off reasoning is retried with the cap doubled, up to the profile's ceiling (default: this
# many times the first cap).
CUTOFF_GROWTH_LIMIT = 4
# A generative profile's cap when a budget is set and the profile gives none: the worst case
# of a call must be bounded for the budget to hold.
DEFAULT_BUDGETED_CAP = 4_096
TRANSIENT_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 120.0


class TransientResponseError(Exception):
    """A 200 whose body could not be read as a chat completion: worth another try."""


class ClientPool:
    """One `AsyncOpenAI` per (base_url, api_key), shared by every profile that uses it.

    Clients hold connection pools bound to an event loop, so a pool lives for one run.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}

    def get(self, base_url: str, api_key: str) -> openai.AsyncOpenAI:
        key = (base_url, api_key)
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(verify=_ssl_context()),
            )
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~45 ms; one context serves every client in the process."""
    return httpx.create_ssl_context()


def resolve_endpoint(profile_name: str, profile: ModelProfile) -> tuple[str, str]:
    """The base URL and key a profile uses: its own, else $OPENAI_BASE_URL / $OPENAI_API_KEY."""
    base_url = profile.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    key = (
        profile.api_key.get_secret_value() if profile.api_key else os.environ.get("OPENAI_API_KEY")
    )
    if not key:
        raise EndpointError(
            f"profile '{profile_name}' ({profile.model}) has no API key: set OPENAI_API_KEY, or "
            f"api_key in models.{profile_name}, or use provider: local for the embedded model",
            profile=profile_name,
            model=profile.model,
        )
    register_secret(key)
    return base_url.rstrip("/"), key


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS or exc.status_code >= 500
    return isinstance(
        exc,
        openai.APIConnectionError  # includes APITimeoutError
        | openai.APIResponseValidationError
        | json.JSONDecodeError
        | TransientResponseError,
    )


def retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `Retry-After`), if it did."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return min(float(ms) / 1000, MAX_RETRY_AFTER_S)
        if (seconds := headers.get("retry-after")) is not None:
            return min(float(seconds), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP-date; fall back to our own backoff
    return None


class _Backoff:
    """Exponential backoff with jitter, unless the server said how long to wait."""

    def __init__(self) -> None:
        self._exp = wait_random_exponential(multiplier=0.25, max=20)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(exc)
        return asked if asked is not None else self._exp(state)


class OpenAIChatModel(ChatModel):
    """A profile served by an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, DeepSeek...)."""

    def __init__(
        self,
        profile_name: str,
        profile: ModelProfile,
        client: openai.AsyncOpenAI,
        base_url: str,
        budget: Budget | None = None,
    ) -> None:
        self.budget = budget
        self.profile = profile_name
        self.model = profile.model
        self.spec = profile
        self.client = client
        self.instruction_role = profile.effective_instruction_role(base_url)
        self._hold_stream = profile.reasoning and urlparse(base_url).hostname != "api.openai.com"

    def __repr__(self) -> str:
        return f"OpenAIChatModel(profile={self.profile!r}, model={self.model!r})"

    def _cap(self) -> int | None:
        if self.spec.max_output_tokens:
            return self.spec.max_output_tokens
        if self.spec.reasoning:
            return DEFAULT_REASONING_CAP
        if self.budget is not None and self.budget.limit_usd is not None:
            return DEFAULT_BUDGETED_CAP
        return None

    def build_request(
        self, messages: list[Message], response_format: ResponseFormat | None, cap: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": self.instruction_role if m.role == "instruction" else m.role,
                    "content": m.content,
                }
                for m in messages
            ],
        }
        if cap is not None:
            body["max_completion_tokens"] = cap
        if self.spec.reasoning:
            if self.spec.reasoning_effort:
                body["reasoning_effort"] = self.spec.reasoning_effort
        elif self.spec.temperature is not None:
            body["temperature"] = self.spec.temperature
        if response_format is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": response_format.name,
                    "schema": response_format.schema,
                    "strict": response_format.strict,
                },
            }
        return body

    async def request(
        self,
        messages: list[Message],
        *,
        purpose: str,
        response_format: ResponseFormat | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        cap = self._cap()
        ceiling = self.spec.max_output_tokens_ceiling or (cap or 0) * CUTOFF_GROWTH_LIMIT
        schema_text = json.dumps(response_format.schema) if response_format else ""
        input_bound = input_token_bound(messages, schema_text)
        calls: list[CallRecord] = []
        while True:
            body = self.build_request(messages, response_format, cap)
            worst = worst_case_usd(input_bound, cap or 0, self.spec.price)
            if self.budget is not None:
                try:
                    self.budget.reserve(worst, f"{purpose} on '{self.profile}' ({self.model})")
                except OrchestratorError as exc:
                    exc.calls = tuple(calls)
                    raise
            try:
                content, trace, finish, record = await self._call_with_retries(
                    body, purpose, on_token
                )
            except OrchestratorError as exc:
                if self.budget is not None:
                    self.budget.settle(worst, 0.0)
                exc.calls = tuple(calls)
                raise
            if self.budget is not None:
                self.budget.settle(worst, record.cost_usd)
            calls.append(record)
            if finish == "length" and not content and self.spec.reasoning and cap:
                if cap < ceiling:
                    cap = min(cap * 2, ceiling)
                    continue
                error = TruncatedError(
                    f"profile '{self.profile}' ({self.model}) spent its whole token cap "
                    f"({cap} tokens) thinking and gave no answer: raise max_output_tokens in "
                    f"models.{self.profile} or lower reasoning_effort",
                    profile=self.profile,
                    model=self.model,
                )
                error.calls = tuple(calls)
                raise error
            return ModelResponse(content, trace, finish, tuple(calls))

    async def _call_with_retries(
        self, body: dict[str, Any], purpose: str, on_token: Callable[[str], None] | None
    ) -> tuple[str, str | None, str | None, CallRecord]:
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.spec.retries + 1),
            wait=_Backoff(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if on_token is None:
                        return await self._once(body, purpose)
                    return await self._once_streaming(body, purpose, on_token)
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except Exception as exc:
            if is_transient(exc):
                raise self._exhausted(exc) from None
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _exhausted(self, exc: BaseException) -> BaseException:
        attempts = self.spec.retries + 1
        if isinstance(exc, openai.APIConnectionError) and not isinstance(
            exc, openai.APITimeoutError
        ):
            return EndpointError(
                f"cannot reach the endpoint of profile '{self.profile}' ({self.model}) at "
                f"{self.client.base_url} after {attempts} attempts: check base_url in "
                f"models.{self.profile} or OPENAI_BASE_URL, and that the server is up",
                profile=self.profile,
                model=self.model,
            )
        what = "timed out" if isinstance(exc, openai.APITimeoutError) else type(exc).__name__
        return ModelError(
            f"profile '{self.profile}' ({self.model}) failed after {attempts} attempts: {what}",
            profile=self.profile,
            model=self.model,
        )

    def _status_error(self, exc: openai.APIStatusError) -> BaseException:
        status = exc.status_code
        detail = _error_detail(exc)
        where = f"profile '{self.profile}' ({self.model})"
        if status in (401, 403):
            hint = f"check the API key for models.{self.profile} (OPENAI_API_KEY or api_key)"
        elif status == 404:
            hint = f"check that model '{self.model}' exists at {self.client.base_url}"
        elif status == 400 or status == 422:
            hint = "the endpoint refused the request; check the profile's settings"
        else:
            return ModelError(
                f"{where}: HTTP {status} after {self.spec.retries + 1} attempts: {detail}",
                profile=self.profile,
                model=self.model,
            )
        return EndpointError(
            f"{where}: HTTP {status}: {detail}; {hint}",
            profile=self.profile,
            model=self.model,
            status=status,
        )

    async def _once(
        self, body: dict[str, Any], purpose: str
    ) -> tuple[str, str | None, str | None, CallRecord]:
        started = time.monotonic()
        completion = await self.client.chat.completions.create(**body, timeout=self.spec.timeout_s)
        if not isinstance(completion, openai.types.chat.ChatCompletion) or not completion.choices:
            raise TransientResponseError("the response was not a chat completion")
        choice = completion.choices[0]
        message = choice.message
        extra = message.model_extra or {}
        field_trace = extra.get("reasoning_content") or extra.get("reasoning")
        answer, trace = _answer_and_trace(
            message.content or "", field_trace if isinstance(field_trace, str) else ""
        )
        usage = _usage(completion.usage)
        record = self._record(purpose, usage, started, choice.finish_reason)
        return answer, trace, choice.finish_reason, record

    async def _once_streaming(
        self, body: dict[str, Any], purpose: str, on_token: Callable[[str], None]
    ) -> tuple[str, str | None, str | None, CallRecord]:
        started = time.monotonic()
        stream = await self.client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}, timeout=self.spec.timeout_s
        )
        visible = StreamFilter(hold=self._hold_stream)
        parts: list[str] = []
        traces: list[str] = []
        finish: str | None = None
        usage = TokenUsage()
        async for chunk in stream:
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            delta = choice.delta
            extra = delta.model_extra or {}
            piece = extra.get("reasoning_content") or extra.get("reasoning")
            if isinstance(piece, str):
                traces.append(piece)
            if delta.content:
                parts.append(delta.content)
                if shown := visible.feed(delta.content):
                    on_token(shown)
        if tail := visible.close():
            on_token(tail)
        answer, trace = _answer_and_trace("".join(parts), "".join(traces))
        return answer, trace, finish, self._record(purpose, usage, started, finish)

    def _record(
        self, purpose: str, usage: TokenUsage, started: float, finish: str | None
    ) -> CallRecord:
        return CallRecord(
            profile=self.profile,
            model=self.model,
            purpose=purpose,
            usage=usage,
            cost_usd=cost_usd(usage, self.spec.price),
            latency_s=time.monotonic() - started,
            finish_reason=finish,
        )


def _answer_and_trace(content: str, field_trace: str) -> tuple[str, str | None]:
    """The visible answer, and every trace: the reasoning field's first, then any <think>."""
    answer, tagged = split_trace(content)
    traces = [t for t in (field_trace, tagged) if t]
    return answer, "\n\n".join(traces) or None


def _usage(raw: Any) -> TokenUsage:
    """Token counts from a response's usage; servers that omit the details count as 0."""
    if raw is None:
        return TokenUsage()
    prompt_details = getattr(raw, "prompt_tokens_details", None)
    completion_details = getattr(raw, "completion_tokens_details", None)
    return TokenUsage(
        input_tokens=raw.prompt_tokens or 0,
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
        output_tokens=raw.completion_tokens or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
    )


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)[:300]
    return exc.message[:300]
