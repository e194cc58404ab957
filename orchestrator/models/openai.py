"""The HTTP client for OpenAI-compatible endpoints: request mapping, one call, its retries.

`OpenAIChatModel.request` is one logical call. Every HTTP exchange goes through
`openai.AsyncOpenAI` with `max_retries=0`; the tenacity loop in `retry.py` is the only retry
loop. Bodies are read raw and parsed in `wire.py`, so a misbehaving server (an error inside a
200, a stream cut short, a body that never ends) is caught and retried rather than returned.

Budgets, prices, the token cap policy, fallback and the ledger are not done here: they are
wrappers around this model (see `connect.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlparse

import openai
from openai import AsyncAPIResponse

from ..errors import EndpointError, ModelError, register_secret
from ..spec import ModelProfile
from .base import ChatModel, Message, ModelResponse, RequestParams
from .pool import ClientPool
from .retry import (
    BODY_READ_ERRORS,
    AttemptTimeout,
    AttemptWatch,
    ConnectionLost,
    TransientError,
    is_timeout,
    is_transient,
    is_unreachable,
    retrying,
)
from .wire import (
    StreamAssembler,
    TokenRelay,
    WireAnswer,
    decode_json,
    error_detail,
    estimate_usage,
    parse_completion,
    sse_events,
)

# The SDK's header for "hand me the response with its body unread", as
# `with_streaming_response` sets it.
RAW_RESPONSE = "X-Stainless-Raw-Response"

__all__ = ["OPENAI_URL", "ClientPool", "OpenAIChatModel", "resolve_endpoint", "sampling"]

OPENAI_URL = "https://api.openai.com/v1"
# After `[DONE]` only the end of the chunked body should follow; reading it lets the connection
# go back to the pool (as the SDK's own stream does), but a server that keeps it open gets no
# longer than this.
DRAIN_S = 0.1


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


def sampling(profile: ModelProfile, params: RequestParams) -> tuple[float | None, str | None]:
    """The temperature and reasoning effort a request is sent with (None: not sent): the
    request's overrides, else the profile's. Reasoning models reject temperature (and top_p);
    effort is theirs alone."""
    if profile.reasoning:
        return None, params.reasoning_effort or profile.reasoning_effort
    temperature = profile.temperature if params.temperature is None else params.temperature
    return temperature, None


class OpenAIChatModel(ChatModel):
    """A profile served by an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, DeepSeek...)."""

    def __init__(
        self, profile_name: str, profile: ModelProfile, client: openai.AsyncOpenAI, base_url: str
    ) -> None:
        self.profile = profile_name
        self.model = profile.model
        self.spec = profile
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.instruction_role = profile.effective_instruction_role(base_url)
        # A reasoning model elsewhere may open a think block implicitly (R1 emits only the
        # closing tag), so its stream is held until `</think>` or the end. OpenAI's own API
        # never returns reasoning text in `content` (it is hidden, or summarized in other
        # fields), so holding there would only turn the stream into one burst at the end; any
        # stray tag is still filtered, and a lone `</think>` still restarts the stream.
        self.hold_stream = profile.reasoning and urlparse(base_url).hostname != "api.openai.com"

    def __repr__(self) -> str:
        return f"OpenAIChatModel(profile={self.profile!r}, model={self.model!r})"

    @property
    def _where(self) -> str:
        return f"profile '{self.profile}' ({self.model})"

    def build_request(self, messages: list[Message], params: RequestParams) -> dict[str, Any]:
        """The JSON body of a non-streamed request (streaming adds its two keys)."""
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
        if params.max_output_tokens is not None:
            body["max_completion_tokens"] = params.max_output_tokens
        temperature, effort = sampling(self.spec, params)
        if effort:
            body["reasoning_effort"] = effort
        if temperature is not None:
            body["temperature"] = temperature
        if params.sample:
            body["seed"] = params.sample  # a sample drawn to differ: reproducible where supported
        if params.response_format is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": params.response_format.name,
                    "schema": params.response_format.schema,
                    "strict": params.response_format.strict,
                },
            }
        return body

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        body = self.build_request(messages, params)
        # One relay for the whole call: what a failed attempt streamed stays shown.
        relay = TokenRelay(params.on_token, params.on_restart) if params.on_token else None
        attempts = self.spec.retries + 1
        watch = AttemptWatch(self.profile, self.model, params.purpose, params.step, attempts)
        try:
            async for attempt in retrying(self.spec.retries, watch):
                with attempt:
                    watch.begin()
                    return await self._attempt(body, relay)
        except openai.APIStatusError as exc:
            await watch.failed(exc)
            raise self._status_error(exc) from None
        except Exception as exc:
            if is_transient(exc):
                await watch.failed(exc)
                raise self._exhausted(exc) from None
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, body: dict[str, Any], relay: TokenRelay | None) -> ModelResponse:
        """One HTTP exchange, bounded as a whole by timeout_s.

        The SDK's timeout applies to each read, so a server that trickles a byte (or an SSE
        keep-alive comment) now and then would hold the call forever; the deadline here does not
        reset.
        """
        started_at, clock = time.time(), time.monotonic()
        try:
            async with asyncio.timeout(self.spec.effective_timeout_s) as deadline:
                if relay is None:
                    answer = await self._fetch(body)
                else:
                    answer = await self._fetch_stream(body, relay)
        except TimeoutError:
            if not deadline.expired():
                raise
            limit = self.spec.effective_timeout_s
            raise AttemptTimeout(
                f"timed out: no complete response within timeout_s={limit:g}"
            ) from None
        if relay is not None:
            relay.show(answer.content, final=True)
        usage = answer.usage
        if usage is None:
            usage = estimate_usage(body, answer.content, answer.trace)
        return ModelResponse(
            answer.content,
            answer.trace,
            answer.finish_reason,
            usage,
            latency_s=time.monotonic() - clock,
            started_at=started_at,
        )

    @contextlib.asynccontextmanager
    async def _open(self, body: dict[str, Any]) -> AsyncIterator[AsyncAPIResponse[Any]]:
        """The response with its body unread: status errors are raised, the body is ours.

        Posted with the client's `post` rather than `chat.completions.create`: `create` runs
        every body through the SDK's TypedDict transform (~0.8 ms a call, a tenth of a run's
        CPU); ours is plain JSON already, built and checked in `build_request`. The request
        is the same — path, headers (the raw-response header `with_streaming_response` sets,
        the read timeout), auth and body.
        """
        options: Any = {
            "headers": {RAW_RESPONSE: "stream"},
            "timeout": self.spec.effective_timeout_s,
        }
        response = await self.client.post(
            "/chat/completions", cast_to=object, body=body, options=options
        )
        try:
            yield cast(AsyncAPIResponse[Any], response)
        finally:
            await cast(AsyncAPIResponse[Any], response).close()

    async def _fetch(self, body: dict[str, Any]) -> WireAnswer:
        async with self._open(body) as response:
            raw = await _read(response)
        return parse_completion(decode_json(raw))

    async def _fetch_stream(self, body: dict[str, Any], relay: TokenRelay) -> WireAnswer:
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with self._open(streamed) as response:
            if "json" in response.headers.get("content-type", ""):
                # A server that ignored `stream` (or reports an error as a JSON body).
                return parse_completion(decode_json(await _read(response)))
            assembler = StreamAssembler(hold=self.hold_stream)
            try:
                async with contextlib.aclosing(sse_events(response.iter_lines())) as events:
                    async for event, data in events:
                        assembler.feed(event, data)
                        relay.show(assembler.visible)
                        if assembler.done:
                            await _drain(events)
                            break
            except BODY_READ_ERRORS as exc:
                raise ConnectionLost(f"the stream broke off ({type(exc).__name__})") from exc
        return assembler.finish()

    def _exhausted(self, exc: BaseException) -> BaseException:
        """The error for a transient failure that outlasted every retry."""
        attempts = self.spec.retries + 1
        if is_unreachable(exc):
            return EndpointError(
                f"cannot reach the endpoint of {self._where} at {self.base_url} after "
                f"{attempts} attempts: check base_url in models.{self.profile} or "
                "OPENAI_BASE_URL, and that the server is up",
                profile=self.profile,
                model=self.model,
            )
        if is_timeout(exc):
            limit = self.spec.effective_timeout_s
            what = (
                f"timed out (timeout_s={limit:g} per attempt): raise timeout_s "
                f"in models.{self.profile} if the model is slow, or check the server"
            )
        elif isinstance(exc, TransientError):
            what = str(exc)
        else:
            what = "the connection failed or was dropped before a response; check the server"
        return ModelError(
            f"{self._where} failed after {attempts} attempts: {what}",
            profile=self.profile,
            model=self.model,
        )

    def _status_error(self, exc: openai.APIStatusError) -> BaseException:
        status = exc.status_code
        detail = _status_detail(exc)
        if status in (401, 403):
            hint = f"check the API key for models.{self.profile} (OPENAI_API_KEY or api_key)"
        elif status == 404:
            hint = f"check that model '{self.model}' exists at {self.base_url}"
        elif status in (400, 422):
            hint = "the endpoint refused the request; check the profile's settings"
        else:
            return ModelError(
                f"{self._where}: HTTP {status} after {self.spec.retries + 1} attempts: {detail}",
                profile=self.profile,
                model=self.model,
            )
        return EndpointError(
            f"{self._where}: HTTP {status}: {detail}; {hint}",
            profile=self.profile,
            model=self.model,
            status=status,
        )


async def _read(response: AsyncAPIResponse[Any]) -> bytes:
    try:
        return await response.read()
    except BODY_READ_ERRORS as exc:
        raise ConnectionLost(f"the response broke off ({type(exc).__name__})") from exc


async def _drain(events: AsyncIterator[tuple[str, str]]) -> None:
    """Read to the end of the body after `[DONE]`, briefly, ignoring anything found there."""
    with contextlib.suppress(TimeoutError, *BODY_READ_ERRORS):
        async with asyncio.timeout(DRAIN_S):
            async for _ in events:
                pass


def _status_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        return error_detail(body.get("error") or body)
    return exc.message[:300]
