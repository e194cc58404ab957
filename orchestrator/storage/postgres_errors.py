"""PostgreSQL URLs without their passwords, and psycopg failures as one `StorageError` line.

A URL is shown only as `redact` leaves it (the password dropped from the user part and from a
`password=` parameter), and every message built from a driver's error is passed through
`Redactor.scrub` first, since libpq quotes parts of a malformed connection string back.

As with SQLite (diagnose.py), only failures the environment causes become StorageError: the
server down or unreachable, a refused login, a missing database, missing privileges, a pool
with no connection to give. A failure that means a bug in orchestrator (a misspelled column, a
constraint violated) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from ..errors import StorageError

SCHEMES = ("postgresql://", "postgres://")
URL_VARIABLE = "ORCHESTRATOR_DATABASE_URL"


def is_database_url(location: str) -> bool:
    return location.strip().lower().startswith(SCHEMES)


def redact(url: str) -> str:
    """`url` with any password removed (from `user:password@` and from `?password=`)."""
    try:
        parts = urlsplit(url.strip())
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() != "password"
        ]
    except ValueError:  # unparsable (a bad port, brackets): show its scheme only
        return url.split("://", 1)[0] + "://..."
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        user = user.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    # Not urlunsplit: it drops the empty host of postgresql:///db (a local socket).
    tail = (f"?{urlencode(query)}" if query else "") + (
        f"#{parts.fragment}" if parts.fragment else ""
    )
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def _passwords(url: str) -> list[str]:
    """Every spelling of the URL's passwords (as written and decoded), longest first."""
    found: list[str] = []
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    if "@" in netloc:
        user = netloc.rsplit("@", 1)[0]
        if ":" in user:
            found.append(user.split(":", 1)[1])
    found += re.findall(r"(?i)[?&]password=([^&#]*)", url)
    found += [unquote(p) for p in found]
    return sorted({p for p in found if p}, key=len, reverse=True)


class Redactor:
    """Says where a database is (`location`) and scrubs its URL's password out of any text."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact(url)
        self._secrets = _passwords(url)

    def scrub(self, text: str) -> str:
        text = text.replace(self.url, self.location)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())  # libpq's messages run over several lines

    def error(self, exc: BaseException) -> StorageError | None:
        """The StorageError for an environmental failure talking to the database; else None."""
        detail = self.scrub(str(exc) or type(exc).__name__)
        where = f"PostgreSQL at {self.location}"
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            message = (
                f"{where} refused orchestrator's tables ({detail}): grant its user CREATE and "
                "USAGE on the schema and rights on the tables, or use a user who owns them"
            )
        elif isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
            message = f"{where} is out of space ({detail}): free space on the server, then retry"
        elif isinstance(exc, PoolTimeout):
            message = (
                f"{where}: no connection became free in time ({detail}): the server may be "
                "overloaded or unreachable; check it, then retry"
            )
        elif isinstance(exc, psycopg.OperationalError):
            message = (
                f"cannot use {where} ({detail}): check that the server is running and "
                f"reachable, that the database exists and that the user and password in "
                f"{URL_VARIABLE} are right (or unset it to keep state under ORCHESTRATOR_HOME)"
            )
        else:
            return None
        return StorageError(message, path=self.location)

    def bad_url(self, exc: BaseException) -> StorageError:
        detail = self.scrub(str(exc) or type(exc).__name__)
        return StorageError(
            f"{URL_VARIABLE} is not a usable PostgreSQL URL ({self.location}: {detail}): write "
            "it as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            path=self.location,
        )

    @contextmanager
    def translating(self) -> Iterator[None]:
        """Re-raise an environmental database failure as its StorageError."""
        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            error = self.error(exc)
            if error is None:
                raise
            raise error from None  # the driver's own text may hold the URL: not chained
