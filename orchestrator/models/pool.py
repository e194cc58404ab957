"""The OpenAI clients runs share: a `ClientPool`, and one per event loop for the runs in flight.

A pool's clients keep their connections open, so runs that overlap (a batch, a server, many
`arun` calls gathered) reuse warm connections instead of opening and closing a socket per run.
The last run to leave closes it, as `open_storage` does with storage: clients are bound to their
event loop, and one left open after its loop ends would leak its sockets.

Many runs at once get more than one client per endpoint. The HTTP pool inside a client looks at
every one of its connections each time a request starts or ends, so with a thousand runs in
flight (three thousand requests) one client spent a third of the process's CPU in that scan.
Up to `MAX_CLIENTS` clients per endpoint, one more for every `RUNS_PER_CLIENT` runs in flight,
taken in turn, each with an equal share of the SDK's default limits (1,000 connections, 100 kept
alive, per endpoint in all): the same sockets, each scan a fraction as long. A lone run, or a
few, use one client, with up to 125 connections at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import AsyncIterator

import httpx
import httpx2
import openai

__all__ = [
    "LIMITS",
    "MAX_CLIENTS",
    "RUNS_PER_CLIENT",
    "ClientPool",
    "build_client",
    "shared_pool",
]

MAX_CLIENTS = 8
RUNS_PER_CLIENT = 50
# The openai SDK's defaults, for an endpoint in all; each client has its share.
LIMITS = httpx2.Limits(
    max_connections=1000 // MAX_CLIENTS, max_keepalive_connections=100 // MAX_CLIENTS
)


class ClientPool:
    """`AsyncOpenAI` clients per (base_url, api_key), shared by every profile that uses it.

    Clients hold connection pools bound to an event loop, so a pool lives on one loop. `runs`
    counts the runs using the pool (`shared_pool` keeps it): more runs, more clients.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], list[openai.AsyncOpenAI]] = {}
        self._turn = 0
        self.runs = 0

    def get(self, base_url: str, api_key: str) -> openai.AsyncOpenAI:
        clients = self._clients.setdefault((base_url, api_key), [])
        wanted = min(MAX_CLIENTS, 1 + self.runs // RUNS_PER_CLIENT)
        if len(clients) < wanted:
            clients.append(build_client(base_url, api_key))
            return clients[-1]
        self._turn += 1
        return clients[self._turn % len(clients)]

    async def aclose(self) -> None:
        for clients in self._clients.values():
            for client in clients:
                await client.close()
        self._clients.clear()


def build_client(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    """One client as the pool builds it (the benchmarks' baselines build theirs with this)."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(verify=_ssl_context(), limits=LIMITS),
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~45 ms; one context serves every client in the process."""
    return httpx.create_ssl_context()


_shared: dict[asyncio.AbstractEventLoop, ClientPool] = {}


@contextlib.asynccontextmanager
async def shared_pool() -> AsyncIterator[ClientPool]:
    """The pool of this event loop's runs in flight; closed when the last one leaves."""
    loop = asyncio.get_running_loop()
    pool = _shared.setdefault(loop, ClientPool())
    pool.runs += 1
    try:
        yield pool
    finally:
        pool.runs -= 1
        if pool.runs == 0:
            del _shared[loop]
            await asyncio.shield(pool.aclose())
