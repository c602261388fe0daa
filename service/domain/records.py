"""The record cache: a token's own user or client row, and its public view, kept per
process for the request path (`/v1/users/me`, the client_credentials grant), so a valid
token's own record costs no database round trip.

This module owns the cache's keys (`Record`), its views and its invalidation. An entry
lives at most `RECORD_TTL_SECONDS`, and is dropped at once when the record changes
through the service: the writer records a `principal` signal naming the `Record`
(`SignalBus.record_changed`) and every process drops it (`drop_signalled`), here at once,
elsewhere within a poll. A change made outside the service (SQL by hand) is seen within
the TTL. Changes that matter to access (disable, role) also revoke sessions, which the
denylist enforces on every request whatever this cache holds. Rows are frozen
dataclasses and views frozen models: safe to share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..cache import BoundedCache
from ..models.users import ClientPublic, UserPublic
from ..store import users as user_store
from ..store.db import Conn
from ..store.users import ClientRow, UserRow

RECORD_TTL_SECONDS = 5.0
MAX_RECORDS = 10_000
SIGNAL_KIND = "principal"


class Record(NamedTuple):
    """A user or a client, by id: the cache key and what a `principal` signal names."""

    kind: Literal["user", "client"]
    id: str

    def signal_value(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def from_signal(cls, value: str) -> Record | None:
        kind, _, ident = value.partition(":")
        if kind == "user":
            return cls("user", ident)
        if kind == "client":
            return cls("client", ident)
        return None


@dataclass(slots=True)
class _Entry:
    row: Any
    view: Any = None  # the public model, made on first use from this row


class RecordCache:
    """Bounded, time-limited (`cache.BoundedCache`); created and held by `Services`."""

    def __init__(
        self,
        *,
        ttl: float = RECORD_TTL_SECONDS,
        max_entries: int = MAX_RECORDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: BoundedCache[Record, _Entry] = BoundedCache(
            max_entries, ttl=ttl, clock=clock
        )

    @property
    def clock(self) -> Callable[[], float]:
        return self._entries.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._entries.clock = clock

    async def user(self, db: Conn, user_id: str) -> UserRow | None:
        entry = await self._entry(db, Record("user", user_id))
        return entry.row if entry is not None else None

    async def client(self, db: Conn, client_id: str) -> ClientRow | None:
        entry = await self._entry(db, Record("client", client_id))
        return entry.row if entry is not None else None

    async def user_view(self, db: Conn, user_id: str) -> tuple[UserRow, UserPublic] | None:
        view: tuple[UserRow, UserPublic] | None = await self._view(
            db, Record("user", user_id), UserPublic.from_row
        )
        return view

    async def client_view(self, db: Conn, client_id: str) -> tuple[ClientRow, ClientPublic] | None:
        view: tuple[ClientRow, ClientPublic] | None = await self._view(
            db, Record("client", client_id), ClientPublic.from_row
        )
        return view

    def get(self, record: Record) -> Any | None:
        """The cached row of `record`, if any (no database read)."""
        entry = self._entries.get(record)
        return entry.row if entry is not None else None

    def drop(self, record: Record) -> None:
        self._entries.pop(record)

    def drop_signalled(self, value: str) -> None:
        """Apply a `principal` signal: drop the record it names."""
        record = Record.from_signal(value)
        if record is not None:
            self._entries.pop(record)

    def __len__(self) -> int:
        return len(self._entries)

    async def _view(self, db: Conn, record: Record, make: Callable[[Any], Any]) -> Any:
        """The row and its view, the view made once per cached row."""
        entry = await self._entry(db, record)
        if entry is None:
            return None
        if entry.view is None:
            entry.view = make(entry.row)
        return entry.row, entry.view

    async def _entry(self, db: Conn, record: Record) -> _Entry | None:
        entry = self._entries.get(record)
        if entry is None:
            row: Any
            if record.kind == "user":
                row = await user_store.get_user(db, user_id=record.id)
            else:
                row = await user_store.get_client(db, client_id=record.id)
            if row is None:
                return None
            entry = _Entry(row)
            self._entries.put(record, entry)
        return entry
