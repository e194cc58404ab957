"""Vectors from an OpenAI-compatible `/v1/embeddings` endpoint: a learned router's features.

An embedding call is paid for like any other call: its worst case (one token per byte at the
profile's input price) is reserved against the run's budget before it is sent, it is retried on
the same transient failures as a chat call, and what it cost lands in the run's ledger as it
happens (purpose `route`), so the run log, `--json` and the usage table all show it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import openai

from ..errors import EndpointError
from ..spec import ModelProfile, WorkflowSpec
from . import local
from .base import CallRecord, TokenUsage
from .budget import Budget
from .ledger import Ledger
from .openai import ClientPool, OpenAIChatModel, resolve_endpoint
from .pricing import cost_usd
from .retry import (
    AttemptWatch,
    FailedAttempt,
    is_transient,
    reporting_attempts,
    retrying,
)


class Embedder:
    """Embeds texts with one profile's endpoint, billing each call to a run."""

    def __init__(
        self, endpoint: OpenAIChatModel, *, ledger: Ledger | None, budget: Budget | None
    ) -> None:
        # The chat model lends its client, retry settings and error messages: the profile is
        # one endpoint, whatever it is asked for.
        self.endpoint = endpoint
        self.ledger = ledger
        self.budget = budget

    @property
    def profile(self) -> str:
        return self.endpoint.profile

    @property
    def model(self) -> str:
        return self.endpoint.model

    async def embed(self, texts: Sequence[str], step: str | None = None) -> list[list[float]]:
        """One vector per text, in order, as the endpoint returned it."""
        if not texts:
            return []
        price = self.endpoint.spec.price
        worst = sum(len(t.encode()) for t in texts) * price.input / 1e6
        if self.budget is not None:
            self.budget.reserve(worst, f"embedding {len(texts)} text(s) with {self.profile}")
        actual = 0.0
        try:
            started, clock = time.time(), time.monotonic()
            vectors, tokens = await self._request(list(texts), step)
            usage = TokenUsage(input_tokens=tokens)
            actual = cost_usd(usage, price)
            if self.ledger is not None:
                await self.ledger.add(
                    CallRecord(
                        profile=self.profile,
                        model=self.model,
                        purpose="route",
                        step=step,
                        usage=usage,
                        cost_usd=actual,
                        latency_s=time.monotonic() - clock,
                        finish_reason="stop",
                        started_at=started,
                    )
                )
        finally:
            if self.budget is not None:
                self.budget.settle(worst, actual)
        return vectors

    async def _request(self, texts: list[str], step: str | None) -> tuple[list[list[float]], int]:
        endpoint = self.endpoint
        with reporting_attempts(self._failed):  # the watch hears of failures through this
            watch = AttemptWatch(self.profile, self.model, "route", step, endpoint.spec.retries + 1)
        try:
            return await self._attempts(texts, watch)
        except openai.APIStatusError as exc:
            await watch.failed(exc)
            raise endpoint._status_error(exc) from None
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, TimeoutError):
                await watch.failed(exc)
                raise endpoint._exhausted(exc) from None
            raise

    async def _failed(self, attempt: FailedAttempt) -> None:
        # Failed attempts are the run's, like a chat call's: the run log and CallRetried.
        if self.ledger is not None:
            await self.ledger.failed(attempt)

    async def _attempts(
        self, texts: list[str], watch: AttemptWatch
    ) -> tuple[list[list[float]], int]:
        endpoint = self.endpoint
        async for attempt in retrying(endpoint.spec.retries, watch):
            with attempt:
                watch.begin()
                async with asyncio.timeout(endpoint.spec.effective_timeout_s):
                    response = await endpoint.client.embeddings.create(
                        model=self.model, input=texts, encoding_format="float"
                    )
                return _vectors(response, len(texts), endpoint), _tokens(response, texts)
        raise AssertionError("unreachable: tenacity either returns or raises")


def _vectors(response: Any, count: int, endpoint: OpenAIChatModel) -> list[list[float]]:
    data = sorted(getattr(response, "data", None) or [], key=lambda d: d.index)
    if len(data) != count or any(not d.embedding for d in data):
        raise EndpointError(
            f"profile '{endpoint.profile}' ({endpoint.model}) at {endpoint.base_url} returned "
            f"{len(data)} embeddings for {count} texts: is it an embeddings endpoint?",
            profile=endpoint.profile,
            model=endpoint.model,
        )
    return [[float(v) for v in d.embedding] for d in data]


def _tokens(response: Any, texts: Sequence[str]) -> int:
    usage = getattr(response, "usage", None)
    reported = getattr(usage, "prompt_tokens", None)
    # A server that reports no usage is charged the worst case: a budget must stay binding.
    return int(reported) if reported else sum(len(t.encode()) for t in texts)


async def embedder_for(
    spec: WorkflowSpec,
    name: str,
    pool: ClientPool,
    *,
    ledger: Ledger | None = None,
    budget: Budget | None = None,
) -> Embedder:
    """The embedder for profile `name` (the embedded server serves embeddings too)."""
    profile: ModelProfile = spec.models[name]
    if profile.provider == "local":
        base_url = await asyncio.to_thread(local.ensure_started)
        client = pool.get(base_url, "local")
    else:
        base_url, key = resolve_endpoint(name, profile)
        client = pool.get(base_url, key)
    return Embedder(OpenAIChatModel(name, profile, client, base_url), ledger=ledger, budget=budget)
