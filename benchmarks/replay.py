"""The orchestrator's requests replayed by hand: overhead.py's baseline.

`Baseline` sends the very bodies orchestrator sent (recorded from its warm-up run) the way
orchestrator sends them: clients built by `orchestrator.models.pool.build_client`, each request
through the client's `post` with the body as it is and the response unread, the per-request
timeout of the profile that serves its model, the body read raw and parsed with `json.loads`,
the streamed synthesis read line by line. `fingerprint` checks that a replay sent the same
requests and headers; `counting_clients` counts the clients orchestrator built.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import openai

from orchestrator.models.openai import RAW_RESPONSE
from orchestrator.models.pool import build_client

Body = dict[str, Any]
Request = tuple[bool, Body, dict[str, str]]  # is_plan, body, headers as the server got them


def new_client() -> openai.AsyncOpenAI:
    """A client built exactly as orchestrator's `ClientPool.get` builds one (by its function)."""
    return build_client(os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"])


@dataclass(frozen=True)
class Baseline:
    """The orchestrator's requests, replayed by hand."""

    bodies: list[Body]  # plan first, synthesize last
    timeouts: dict[str, float]  # model name -> the timeout its profile sends
    clients: int  # clients built per run

    async def run(self) -> None:
        """Plan, then every solve at once, then the streamed synthesis."""
        plan_body, *solve_bodies, synth_body = self.bodies
        async with AsyncExitStack() as stack:
            clients = [new_client() for _ in range(self.clients)]
            for c in clients:
                stack.push_async_callback(c.close)
            client = clients[0]  # one endpoint: orchestrator too sends everything to one
            plan = await self.call(client, plan_body)
            subproblems = json.loads(plan["choices"][0]["message"]["content"])["subproblems"]
            assert len(subproblems) == len(solve_bodies)
            await asyncio.gather(*(self.call(client, b) for b in solve_bodies))
            await self.stream(client, synth_body)

    async def post(self, client: openai.AsyncOpenAI, body: Body) -> Any:
        """The request path orchestrator uses: the client's `post` with the body as it is, the
        response handed over unread (as `with_streaming_response` does)."""
        options: Any = {
            "headers": {RAW_RESPONSE: "stream"},
            "timeout": self.timeouts[body["model"]],
        }
        return await client.post("/chat/completions", cast_to=object, body=body, options=options)

    async def call(self, client: openai.AsyncOpenAI, body: Body) -> Any:
        response = await self.post(client, body)
        try:
            return json.loads(await response.read())
        finally:
            await response.close()

    async def stream(self, client: openai.AsyncOpenAI, body: Body) -> None:
        response = await self.post(client, body)
        try:
            async for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    json.loads(line[6:])
        finally:
            await response.close()


def record_bodies(requests: list[Request]) -> list[Body]:
    """The orchestrator's requests, plan first and synthesize last."""
    plan = [body for is_plan, body, _ in requests if is_plan]
    rest = [body for is_plan, body, _ in requests if not is_plan]
    synth = [b for b in rest if b.get("stream")]
    solves = [b for b in rest if not b.get("stream")]
    assert len(plan) == 1 and len(synth) == 1, (len(plan), len(synth))
    return [*plan, *solves, *synth]


def fingerprint(requests: list[Request]) -> Counter[str]:
    """Requests as a multiset of (body, headers but the connection's own)."""
    return Counter(
        json.dumps([body, {k: v for k, v in headers.items() if k != "host"}], sort_keys=True)
        for _, body, headers in requests
    )


@contextmanager
def counting_clients() -> Iterator[list[int]]:
    """Count the http clients built for `openai` while inside (orchestrator's ClientPool)."""
    built, original = [0], openai.DefaultAsyncHttpxClient

    class Counted(openai.DefaultAsyncHttpxClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built[0] += 1
            super().__init__(*args, **kwargs)

    openai.DefaultAsyncHttpxClient = Counted
    try:
        yield built
    finally:
        openai.DefaultAsyncHttpxClient = original
