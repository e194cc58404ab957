"""Whether the process behind a run or a lease still exists.

A pid only means something on the host that wrote it, so each row records its host too; a
shared state directory (one database for several machines) never judges another host's pid.
"""

from __future__ import annotations

import os
import socket

from .base import LeaseHolder

HOST = socket.gethostname()


def lease_is_free(holder: LeaseHolder, owner: str, now: float) -> bool:
    """Ours already, expired, or held by a process of this host that no longer exists."""
    if holder.owner == owner or holder.expires_at <= now:
        return True
    return holder.host == HOST and holder.pid != os.getpid() and not pid_alive(holder.pid)


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists on this host (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but another user's
    return True


def live_status(status: str, pid: int | None, host: str | None) -> str:
    """A run still marked running whose process is gone was killed: call it interrupted.

    A pid is only judged on its own host (rows from before hosts were recorded count as ours).
    """
    if status != "running" or pid is None or pid == os.getpid():
        return status
    if host is not None and host != HOST:
        return status
    return status if pid_alive(pid) else "interrupted"
