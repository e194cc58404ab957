"""One `ClientPool` shared by the runs in flight on an event loop.

A pool's clients keep their connections open, so runs that overlap (a batch, a server, many
`arun` calls gathered) reuse warm connections instead of opening and closing a socket per run.
The last run to leave closes it, as `open_storage` does with storage: clients are bound to their
event loop, and one left open after its loop ends would leak its sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .openai import ClientPool


@dataclass
class _Shared:
    pool: ClientPool = field(default_factory=ClientPool)
    users: int = 0


_shared: dict[asyncio.AbstractEventLoop, _Shared] = {}


@contextlib.asynccontextmanager
async def shared_pool() -> AsyncIterator[ClientPool]:
    """The pool of this event loop's runs in flight; closed when the last one leaves."""
    loop = asyncio.get_running_loop()
    shared = _shared.setdefault(loop, _Shared())
    shared.users += 1
    try:
        yield shared.pool
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _shared[loop]
            await asyncio.shield(shared.pool.aclose())
