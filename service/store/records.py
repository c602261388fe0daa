"""A per-process cache of user and client rows for the request path (`/v1/users/me`, the
client_credentials grant), so a valid token's own record costs no database round trip.

An entry lives at most `RECORD_TTL_SECONDS` (5 s), and is dropped at once when the record
changes through the service: `domain.identity.update_user` records a `principal` signal
that every process applies (`signalbus`), here or within a poll elsewhere. A change made
outside the service (SQL by hand) is seen within the TTL. Changes that matter to access
(disable, role) also revoke the user's sessions, which the denylist enforces on every
request whatever this cache holds. Rows are frozen dataclasses, safe to share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

RECORD_TTL_SECONDS = 5.0
MAX_RECORDS = 10_000
Row = TypeVar("Row")
View = TypeVar("View")


class RecordCache(Generic[Row]):
    """Bounded, time-limited; the oldest entry goes first when full."""

    def __init__(
        self,
        ttl: float = RECORD_TTL_SECONDS,
        max_entries: int = MAX_RECORDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._rows: dict[str, tuple[float, Row]] = {}

    def get(self, key: str) -> Row | None:
        entry = self._rows.get(key)
        if entry is None:
            return None
        if self.clock() > entry[0]:
            del self._rows[key]
            return None
        return entry[1]

    def put(self, key: str, row: Row) -> None:
        if key not in self._rows and len(self._rows) >= self.max_entries:
            del self._rows[next(iter(self._rows))]
        self._rows[key] = (self.clock() + self.ttl, row)

    def drop(self, key: str) -> None:
        self._rows.pop(key, None)

    def __len__(self) -> int:
        return len(self._rows)


class RowViews(Generic[Row, View]):
    """What a row looks like to a caller (its public model), made once per row object.

    A cached row is served as the same object until its entry expires or is dropped, and
    a changed record is always a new row object (rows are frozen), so a view made from
    the row it was made for is still right. Each entry keeps its row, so an id in the
    table always names that row. Bounded: the table starts over when full."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._views: dict[int, tuple[Row, View]] = {}

    def view(self, row: Row, make: Callable[[Row], View]) -> View:
        entry = self._views.get(id(row))
        if entry is not None and entry[0] is row:
            return entry[1]
        made = make(row)
        if len(self._views) >= self.max_entries:
            self._views.clear()
        self._views[id(row)] = (row, made)
        return made

    def __len__(self) -> int:
        return len(self._views)
