"""A run's lease: one process at a time runs a run id (two `resume`s of one run, a server
restarted beside the one still running it). Held for the whole run, renewed in the background,
let go when it ends; one not renewed for its time to live can be taken by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator

from .errors import RunBusyError, StorageError, UsageError
from .storage import Storage

LEASE_TTL_S = 30.0  # a lease not renewed for this long (its process hung or died) can be taken


def lease_ttl_s() -> float:
    """$ORCHESTRATOR_LEASE_TTL_S, else LEASE_TTL_S: how soon another host may take over a run
    whose process vanished (on the same host a dead pid frees the lease at once)."""
    raw = os.environ.get("ORCHESTRATOR_LEASE_TTL_S", "").strip()
    try:
        ttl = float(raw) if raw else LEASE_TTL_S
    except ValueError:
        ttl = -1.0
    if not 0 < ttl < float("inf"):
        raise UsageError(f"ORCHESTRATOR_LEASE_TTL_S={raw!r} is not a positive number of seconds")
    return ttl


@contextlib.asynccontextmanager
async def leased(storage: Storage, run_id: str) -> AsyncIterator[None]:
    """Hold the run's lease for the duration, renewing it; refuse if another process has it."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    ttl = lease_ttl_s()
    holder = await storage.runs.acquire_lease(run_id, owner, ttl)
    if holder is not None:
        raise RunBusyError(
            f"run {run_id} is being run by process {holder.pid} on {holder.host}: wait for it "
            "to finish (`orchestrator runs` shows its status), then resume it if needed"
        )

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await storage.runs.renew_lease(run_id, owner, ttl)
            except StorageError:
                return  # the run's own writes fail the same way, and end it with that message

    heartbeat = asyncio.ensure_future(renew())
    try:
        yield
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await asyncio.shield(storage.runs.release_lease(run_id, owner))
