"""SQLite through aiosqlite in one thread hop per statement.

SQLAlchemy's aiosqlite adapter awaits four hops to the connection's thread per statement
(cursor, execute, fetchall, close) and one per commit or rollback, even when SQLite has no
transaction open (every read ends with one). Here one function runs the whole statement in
the connection's thread and hands back the rows, and commit/rollback skip the hop when
sqlite3 itself would do nothing (its own check: `in_transaction`). Everything else (the
pool, errors, isolation, the `connect`/`begin` events) is SQLAlchemy's adapter unchanged."""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, int, int | None, list[Any]]

# The shim below overrides SQLAlchemy 2.1's adapter hooks; older adapters keep their own.
SUPPORTED = all(
    hasattr(AsyncAdapt_aiosqlite_cursor, name)
    for name in ("_execute_async", "_executemany_async", "_async_soft_close")
)


def _run(
    adapted: OneHopConnection,
    conn: sqlite3.Connection,
    operation: str,
    parameters: Any,
    many: bool,
) -> _Outcome:
    """In the connection's thread: the statement, its rows, and what the cursor reports."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()
        adapted._done += 1  # written by this thread only


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose results arrive in one hop; it holds no aiosqlite cursor."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    def setinputsizes(self, *_inputsizes: Any) -> None:
        return None

    async def _run(self, operation: str, parameters: Any, many: bool) -> Any:
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
            adapted._queued += 1  # written by the event loop's thread only
            outcome: _Outcome = await connection._execute(
                _run, adapted, connection._conn, operation, parameters, many
            )
            self._description, self._rowcount, self._lastrowid, rows = outcome
            self._rows = collections.deque(rows)
            return self

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._run(operation, seq_of_parameters, True)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_done", "_queued")
    _cursor_cls = OneHopCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._queued = 0
        self._done = 0

    def _may_end_transaction(self) -> bool:
        """False only when sqlite3's commit/rollback would do nothing: every statement
        queued from here has finished in the connection's thread (a cancelled one may
        still be running: then the hop is taken, queued behind it), and sqlite3 reports
        no open transaction (`in_transaction` is not checked for the thread)."""
        conn = self._connection._connection
        if conn is None or self._queued != self._done:
            return True
        return bool(conn.in_transaction)

    def rollback(self) -> None:
        if self._may_end_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._may_end_transaction():
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI shim whose connections run each statement in one hop."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> OneHopDBAPI:

    return OneHopDBAPI(aiosqlite, sqlite3)
