"""A whole SQLite transaction in one trip to aiosqlite's thread.

aiosqlite hands every statement, and every cursor step, to its connection's thread and back:
about 0.1 ms of CPU each, and more when the event loop is busy, since the thread then waits for
the GIL. A group commit was three trips (BEGIN, the rows, COMMIT) and a lease five; on the path
from one model call to the next step they added up to milliseconds. Here a function is given
the `sqlite3.Connection` itself, on the thread, and does all of it in one trip.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import aiosqlite

from .group_commit import Row, Writer

T = TypeVar("T")
Statements = Sequence[tuple[str, Sequence[Row]]]


async def on_thread(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(connection)` on `db`'s thread, between whatever `db` runs before and after it.

    `_execute` and `_conn` are aiosqlite's own names for exactly this (every public method is
    built on them; unchanged since 0.17); tests/test_sqlite_thread.py runs them on the installed
    version.
    """
    return cast(T, await db._execute(work, db._conn))


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(conn)` inside BEGIN IMMEDIATE ... COMMIT, rolled back if it (or COMMIT) fails.

    IMMEDIATE takes the file's write lock first (waiting up to the busy timeout for other
    processes) rather than failing later when a read turns into a write. Run on the thread, it
    can never leave the shared connection inside a transaction nobody ends: a caller cancelled
    meanwhile does not stop it.
    """
    conn.execute("begin immediate")
    try:
        result = work(conn)
        conn.commit()
    except BaseException:
        # SQLite has already rolled back after some errors (a full disk).
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


def write_rows(conn: sqlite3.Connection, statements: Statements) -> None:
    """Each statement's rows, in order, in one transaction: all of them or none."""

    def write(conn: sqlite3.Connection) -> None:
        for sql, rows in statements:
            conn.executemany(sql, rows)

    in_transaction(conn, write)


def writing(db: aiosqlite.Connection) -> Writer:
    """A group commit's `Writer` for `db`: each batch in one transaction, in one trip."""

    async def write(statements: Statements) -> None:
        await on_thread(db, functools.partial(write_rows, statements=statements))

    return write
