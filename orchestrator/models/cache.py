"""The response cache's model side: the request key, and `CachedModel`, which answers a request
it has seen answered before without calling the endpoint.

`CachedModel` sits directly inside the ledger (Ledger(Cache(model))): a hit still passes through
the ledger, which records it as a call with `cached: true`, cost 0, and the original call's usage
and latency; a miss goes to the model and is billed as usual. Only complete answers are stored
(finish_reason `stop`, some text): errors, answers cut off at the cap, tool calls and streams
that broke off never are, so a later run asks again instead of replaying a failure.

The key is the sha256 of a canonical JSON object (sorted keys, no whitespace) holding:

    v                  1 (the key's format; a new format never reads old entries)
    endpoint           the base URL; `local` for the embedded model (its port changes with
                       every process); `profile:NAME` for a ChatModel plugged in as NAME
    model              the model id sent
    messages           [{role, content}], roles as orchestrator names them
    response_format    {name, schema, strict}, or null
    max_output_tokens  the cap sent, or null
    temperature        as sent: the request's override, else the profile's (null for reasoning)
    reasoning_effort   as sent: the request's override, else the profile's (null otherwise)
    sample             `RequestParams.sample`: samples drawn to differ get distinct keys
    salt               a label keeping otherwise identical requests apart ("" by default; an
                       evaluation's repeat number, so repeats are drawn anew)

Nothing secret is part of it (no API key), nor `on_token`: streaming or not, the answer is the
same, and a hit asked to stream replays the stored answer through `on_token`.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from ..spec import ModelProfile
from ..storage.base import CachedAnswer, ResponseCache
from .base import ChatModel, Message, ModelResponse, RequestParams
from .openai import sampling
from .wrapper import WrapperModel

KEY_VERSION = 1


def request_key(
    endpoint: str,
    profile: ModelProfile,
    messages: list[Message],
    params: RequestParams,
    salt: str = "",
) -> str:
    """The cache key of one request: a sha256 hex digest (see the module's docstring)."""
    temperature, effort = sampling(profile, params)
    fmt = params.response_format
    request: dict[str, Any] = {
        "v": KEY_VERSION,
        "endpoint": endpoint,
        "model": profile.model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "response_format": (
            None if fmt is None else {"name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}
        ),
        "max_output_tokens": params.max_output_tokens,
        "temperature": temperature,
        "reasoning_effort": effort,
        "sample": params.sample,
    }
    if salt:
        request["salt"] = salt  # absent when empty: keys made before salts existed still match
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def storable(response: ModelResponse) -> bool:
    """A complete answer: it stopped by itself and said something. Cut-off (`length`) and
    tool-call answers never are; an error or a broken stream never gets here."""
    return response.finish_reason == "stop" and bool(response.content.strip())


class CachedModel(WrapperModel):
    """Answers from `cache` when it can; otherwise asks the model and stores what can be."""

    def __init__(
        self,
        wrapped: ChatModel,
        cache: ResponseCache,
        *,
        endpoint: str,
        profile: ModelProfile,
        salt: str = "",
    ) -> None:
        super().__init__(wrapped)
        self.cache = cache
        self.endpoint = endpoint
        self.salt = salt
        self.spec = profile

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        key = request_key(self.endpoint, self.spec, messages, params, self.salt)
        hit = await self.cache.get(key)
        if hit is not None:
            if params.on_token is not None:
                params.on_token(hit.content)
            return ModelResponse(
                hit.content,
                hit.trace,
                hit.finish_reason,
                hit.usage,
                latency_s=hit.latency_s,
                cached=True,
            )
        clock = time.monotonic()
        response = await self.wrapped.request(messages, params)
        if storable(response):
            # A model that does not time itself is timed by the ledger too, the same way.
            latency = time.monotonic() - clock if response.latency_s is None else response.latency_s
            answer = CachedAnswer(response.content, response.trace, "stop", response.usage, latency)
            self.cache.put(key, answer)  # never waits nor raises: the ledger must record it
        return response
