"""A throwaway PostgreSQL server for the tests: a cluster in a temp dir, on a free port.

Debian's PostgreSQL (`initdb`, `pg_ctl` on PATH or under /usr/lib/postgresql/*/bin) refuses to
run as root, so when the tests run as root the cluster belongs to the `postgres` system user
and its commands run through `runuser`. Authentication is `trust` on 127.0.0.1 only: a URL's
password is accepted and ignored, which lets tests check that a password never leaks.

When no server can be started this raises `PostgresUnavailable` with what is missing: the
Postgres tests then fail, never skip (`make test` installs the package first).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg

START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started for the tests."""


def find_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise PostgresUnavailable(
        f"{name} was not found on PATH nor under /usr/lib/postgresql/*/bin: install PostgreSQL "
        "(apt-get install -y postgresql; `make test` does it) to run the PostgreSQL tests"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A started cluster: `url(db)` for a database on it, `create_database()` for a fresh one."""

    port: int
    directory: Path
    _numbers: Iterator[int]

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database's name."""
        name = f"test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'create database "{name}"')
        return name


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(
        _as_owner(command), capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise PostgresUnavailable(f"{what} failed ({done.returncode}): {done.stderr.strip()}")


@contextmanager
def postgres_server() -> Iterator[PgServer]:
    """Start a cluster for the duration; stopped (immediate) and removed afterwards."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    data, log = directory / "data", directory / "server.log"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    started = False
    try:
        _run([initdb, "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"], "initdb")
        port = free_port()
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
            # A test server: durability is not what is being tested, speed is welcome.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            _run([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S),
                  "-o", options, "start"], "pg_ctl start")  # fmt: skip
        except PostgresUnavailable as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\n{tail}") from None
        started = True
        yield PgServer(port, directory, count(1))
    finally:
        if started:
            subprocess.run(
                _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True, timeout=START_TIMEOUT_S, check=False,
            )  # fmt: skip
        shutil.rmtree(directory, ignore_errors=True)
