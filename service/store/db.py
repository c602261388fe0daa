"""The database: the async engine, SQLite (WAL, busy timeout, foreign keys, private files)
or PostgreSQL (asyncpg), with the clock and the typed-row mapping every store module uses.

Constructing a `Database` touches nothing outside memory (the engine connects lazily);
`open()` prepares a SQLite file (created 0600, switched to WAL) and is also run by the
first `begin`/`read`/`rows` that finds it not done. Two ways in, one job each:

- `begin()`: a transaction, for every write and every read that needs one snapshot or a lock;
- `rows(conn, statement, params)`, with the `Database` itself as `conn`: one statement
  outside a transaction. On a SQLite file it runs on the reader (`sqlite_reader`), one
  thread hop and no engine; elsewhere on an autocommit connection of the engine.

`read()` is an autocommit connection for work of several statements (the signal poll,
the migration check); the request path's single reads go through `rows`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import NullPool, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable, Select

from ..files import create_private_file
from .sqlite_reader import SqliteReader

_READ_ONLY = "portcullis_read_only"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
R = TypeVar("R")


def typed_row(cls: type[R], row: Any) -> R:
    """A result row as the dataclass `cls`: each field read from the column of its name
    (columns the dataclass does not name are left out)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(*[getattr(row, field.name) for field in fields])


def now_us() -> int:
    return time.time_ns() // 1000


def now() -> float:
    """The same clock as `now_us`, in seconds."""
    return now_us() / 1_000_000


def sqlite_file(dsn: str) -> Path | None:
    """The database file of a SQLite DSN (None for PostgreSQL, memory or URI names)."""
    url = make_url(dsn)
    name = url.database
    if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or url.query.get("uri"):
        return None
    return Path(name)


def sqlite_files(dsn: str) -> list[Path]:
    """The database file and the files SQLite keeps beside it."""
    database = sqlite_file(dsn)
    if database is None:
        return []
    return [database, *(database.with_name(database.name + s) for s in SQLITE_SIDE_FILES)]


def enable_wal(database: Path, attempts: int = 50) -> None:
    """Switch a database file to WAL once (kept in the file). SQLite may refuse the switch's
    lock at once while another process starting on the new file does the same: retry."""
    for attempt in range(attempts):
        try:
            with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)  # a worker thread: no event loop is waiting on this


def prepare_sqlite_file(database: Path) -> None:
    # SQLite gives -wal and -shm the database file's mode: create it 0600 first.
    create_private_file(database)
    enable_wal(database)


# A write transaction on SQLite waits at most this long for this process's turn, then 503
# (the busy timeout other processes' writers are waited for with).
SQLITE_WRITE_WAIT_SECONDS = 10.0


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pgbouncer: bool = False,
    ) -> None:
        url = make_url(dsn)
        self.dialect = url.get_backend_name()
        self.reader: SqliteReader | None = None
        self._writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._file = sqlite_file(dsn) if self.dialect == "sqlite" else None
        self._opened = self._file is None  # nothing to prepare outside memory
        self._pgbouncer = pgbouncer and self.dialect == "postgresql"
        # A request waits at most 5 s for a pooled connection, then gets 503.
        kwargs: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": 5,
        }
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 10}
            # Every write transaction ends explicitly (commit or rollback) and reads run
            # without one, so the pool's extra ROLLBACK per checkout is only a thread hop.
            kwargs["pool_reset_on_return"] = None
        elif self.dialect == "postgresql":
            connect_args: dict[str, Any] = {"timeout": 5, "command_timeout": 10}
            kwargs.update(pool_recycle=1800, connect_args=connect_args)
            if pgbouncer:
                # PgBouncer in transaction mode hands each transaction to any server
                # connection: no prepared statement may outlive its statement, and no
                # two clients may use one name (SQLAlchemy's asyncpg dialect docs,
                # "Prepared Statement Name with PGBouncer"). The bouncer pools, so this
                # process keeps no idle connections of its own.
                connect_args.update(
                    statement_cache_size=0,
                    prepared_statement_cache_size=0,
                    prepared_statement_name_func=_unique_statement_name,
                )
                kwargs = {"poolclass": NullPool, "connect_args": connect_args}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            self._configure_sqlite()
            if self._file is not None:
                self.reader = SqliteReader(self._file, self.engine.sync_engine.dialect)

    @classmethod
    def for_settings(cls, settings: Any) -> Database:
        """The database `settings` (a `config.Settings`) name, with its pool settings:
        what the service and every command use, so a command behind PgBouncer works too."""
        return cls(
            settings.database_dsn,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pgbouncer=settings.db_pgbouncer,
        )

    async def open(self) -> None:
        """The file work: a SQLite file created private and switched to WAL (idempotent)."""
        if not self._opened and self._file is not None:
            await asyncio.to_thread(prepare_sqlite_file, self._file)
        self._opened = True

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook issue BEGIN IMMEDIATE: a writer takes the
            # write lock up front, so two writers never deadlock on a lock upgrade.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            # First: switching to WAL needs the lock another process may hold just then
            # (several processes starting on a new file), so wait for it like any statement.
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA journal_mode=WAL")  # already WAL (open): a no-op
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front. Readers of one statement need no
            # transaction: each statement reads one WAL snapshot beside the writer.
            if not conn.get_execution_options().get(_READ_ONLY, False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back on error.

        On SQLite, the transactions of this process take turns (first come, first
        served) before BEGIN IMMEDIATE: SQLite has one writer at a time anyway, and
        writers left to its busy handler poll with growing sleeps, so under a burst some
        waited seconds while later ones went first."""
        if not self._opened:
            await self.open()
        if self.dialect != "sqlite":
            async with self.engine.begin() as conn:
                yield conn
            return
        turn = self._write_turn()
        async with asyncio.timeout(SQLITE_WRITE_WAIT_SECONDS):
            await turn.acquire()
        try:
            async with self.engine.begin() as conn:
                yield conn
        finally:
            turn.release()

    async def write_one(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        """One write statement that is atomic alone, without BEGIN and COMMIT round trips:
        SQLite commits it by itself (after this process's turn), PostgreSQL in autocommit."""
        if self.dialect != "sqlite":
            async with self.read() as conn:
                return list(await conn.execute(statement, dict(params)))
        if not self._opened:
            await self.open()
        turn = self._write_turn()
        async with asyncio.timeout(SQLITE_WRITE_WAIT_SECONDS):
            await turn.acquire()
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(**{_READ_ONLY: True})  # no BEGIN IMMEDIATE
                return list(await conn.execute(statement, dict(params)))
        finally:
            turn.release()

    def _write_turn(self) -> asyncio.Lock:
        """The lock of the running event loop (tests and the CLI run several loops)."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, asyncio.Lock())
        return self._writer[1]

    async def fetch(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        """The rows of one statement outside a transaction (attribute access by column
        name); store functions reach it through `rows(db, ...)`."""
        if self.reader is not None and isinstance(statement, Select):
            compiled = self.reader.compiled(statement)
            if compiled is not None:
                if not self._opened:
                    await self.open()
                return await self.reader.fetch(compiled, params)
        async with self.read() as conn:
            return list(await conn.execute(statement, dict(params)))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """For reads of several statements without a transaction's round trips
        (autocommit on PostgreSQL, no BEGIN on SQLite), so they never queue behind writers."""
        if not self._opened:
            await self.open()
        if self._pgbouncer:
            # SQLAlchemy's asyncpg adapter prepares, then executes, in two exchanges; in
            # autocommit PgBouncer may hand the second to another server connection, where
            # the statement does not exist. A transaction keeps them on one.
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                await conn.execution_options(**{_READ_ONLY: True})
            else:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        await self.engine.dispose()


# What a store function takes first: a transaction's connection (`Database.begin`), or
# the `Database` itself for one statement outside a transaction.
Conn: TypeAlias = AsyncConnection | Database


async def rows(conn: Conn, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
    """Run one statement on `conn` and return its rows (attribute access by column name)."""
    if isinstance(conn, Database):
        return await conn.fetch(statement, params)
    return list(await conn.execute(statement, dict(params)))


async def first(conn: Conn, statement: Executable, params: Mapping[str, Any]) -> Any | None:
    found = await rows(conn, statement, params)
    return found[0] if found else None
