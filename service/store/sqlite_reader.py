"""Single-statement reads of a SQLite file in one thread hop, without SQLAlchemy's engine.

Through the async engine, most of a one-row read's CPU time is the engine around the
statement (pool checkout and return with their events, greenlet switches, execution
context, result proxy), not SQLite or aiosqlite's hop (figures: bench/PROFILE.md). The
reads outside a transaction (`Database.fetch`, reached through `store.db.rows`) go
through here instead: each statement is compiled once by SQLAlchemy for the SQLite
dialect through its public compiler attributes (`string`, `positiontup`, `binds`, the
statement's `selected_columns` and their types' bind and result processors), then runs
on one aiosqlite connection kept for reads (`query_only`). `tests/store/test_sqlite_reader`
checks every store statement against the engine's own answer.

Semantics are those of `Database.read()` on SQLite: no transaction, each statement reads
one WAL snapshot beside the writer, committed writes are seen by the next statement.
Driver errors arrive as SQLAlchemy's `DBAPIError`, so they get the same 503 as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from ..cache import BoundedCache

_MAX_COMPILED = 256
_REQUIRED = object()
_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    binds: tuple[tuple[str, Any, _Convert], ...]  # (name, default, conversion), in order
    columns: tuple[_Convert, ...]
    row: Callable[..., Any]  # a named tuple: attribute access by column name


def compile_select(statement: Select[Any], dialect: Dialect) -> Compiled | None:
    """The statement as SQL text for sqlite3 (qmark parameters) with its conversions;
    None when it needs SQLAlchemy at run time (expanding IN lists, literal-execute
    parameters)."""
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.expanding:
            return None
        if bind.callable is not None:
            return None
        default = _REQUIRED if bind.required else bind.effective_value
        binds.append((name, default, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    names = []
    columns = []
    # The statement's own selected columns, in the order the compiled SQL selects them.
    for name, column in statement.selected_columns.items():
        names.append(name)
        columns.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
    return Compiled(
        sql=compiled.string,
        binds=tuple(binds),
        columns=tuple(columns),
        row=namedtuple("Row", names, rename=True),
    )


class SqliteReader:
    """One aiosqlite connection for reads, opened on first use, closed by `close`."""

    def __init__(self, database: Path, dialect: Dialect) -> None:
        self.database = database
        self.dialect = dialect
        self._compiled: BoundedCache[int, tuple[Select[Any], Compiled | None]] = BoundedCache(
            _MAX_COMPILED
        )
        self._conn: aiosqlite.Connection | None = None
        self._opening: asyncio.Future[aiosqlite.Connection] | None = None

    def compiled(self, statement: Select[Any]) -> Compiled | None:
        key = id(statement)  # the entry holds the statement: its id is not reused
        entry = self._compiled.get(key)
        if entry is None:
            entry = (statement, compile_select(statement, self.dialect))
            self._compiled.put(key, entry)
        return entry[1]

    async def fetch(self, compiled: Compiled, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, default, convert in compiled.binds:
            value = params.get(name, default)
            if value is _REQUIRED:
                raise TypeError(f"the statement needs the parameter {name!r}")
            values.append(convert(value) if convert is not None else value)
        conn = self._conn or await self._open()
        try:
            rows = await conn.execute_fetchall(compiled.sql, values)  # one hop
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                compiled.sql, values, exc, sqlite3.Error, dialect=self.dialect
            ) from exc
        make, columns = compiled.row, compiled.columns
        if not any(columns):
            return [make(*row) for row in rows]
        return [
            make(*[c(v) if c is not None else v for c, v in zip(columns, row, strict=True)])
            for row in rows
        ]

    async def _open(self) -> aiosqlite.Connection:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._opening)
        except BaseException:
            if self._opening.done():
                self._opening = None  # a failed open is tried again by the next read
            raise

    async def _connect(self) -> aiosqlite.Connection:
        try:
            conn = await aiosqlite.connect(self.database, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise DBAPIError.instance("connect", [], exc, sqlite3.Error) from exc
        try:
            # Readers wait for the lock a checkpoint or a recovery may hold briefly;
            # query_only: this connection can never write, whatever it is handed.
            await conn.execute("PRAGMA busy_timeout=10000")
            await conn.execute("PRAGMA query_only=ON")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def close(self) -> None:
        opening, self._opening = self._opening, None
        conn, self._conn = self._conn, None
        if conn is None and opening is not None:
            with contextlib.suppress(Exception):
                conn = await opening  # an open in flight: closed once it has opened
            self._conn = None
        if conn is not None:
            await conn.close()
