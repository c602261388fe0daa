"""The signal bus: delivers every committed signal (revocation, block, unblock) to every
process, none lost, whatever order the writing transactions commit in.

Why "the highest id seen" is not enough: PostgreSQL hands sequence values out at insert
time, but the transactions commit in any order. A poller that has read id 11 and keeps
asking for `id > 11` never sees id 10 when its transaction commits a moment later.

How this bus reads instead:
- Each poll asks for `id > highest seen` and for the *holes*: ids below the highest seen
  that were missing when it was read. A late row fills its hole at the next poll (at
  once when Redis announces its commit). Holes cost nothing when there are none.
- A hole is dropped only once it is proven permanent (rolled back, expired or purged).
  PostgreSQL: every INSERT takes the table's row-exclusive lock before its sequence value
  and holds it until its transaction ends. When a hole is noticed, the next poll notes
  the transactions holding that lock (`pg_locks`); the writer of the hole is among them
  or has ended already. Once all of them have ended, one more read settles the hole:
  the row is there, or it never will be. No clock, no guessed transaction length, and a
  hole lasts as long as its writer's transaction, typically one poll.
  Weighed and not taken: a time window ("ids older than the longest transaction") has
  no true bound to rely on; `pg_snapshot_xmin` needs each writer's transaction id in
  the row (a schema change), and any long transaction anywhere in the cluster would
  hold back every delivery; here a long writer only keeps its holes asked for.
- At start-up (and should holes ever exceed `MAX_HOLES`) the holes are kept as a range
  that is read again, as a whole, each time one of its possible writers has ended.
- SQLite serialises writers, so ids become visible in order and there are no holes; its
  one trap, a deleted highest rowid being handed out again, is closed in `purge_expired`.
- Safety valve: a hole still open after `MAX_WAIT_SECONDS` (a writer's transaction open
  that long) is dropped with an ERROR log, so memory and the query stay bounded.

Applying a signal twice is harmless (exactly-once in effect): revocations keep the
later expiry, and blocks/unblocks carry their id, so per address only the newest one
counts and an old `block` read late cannot undo a newer `unblock`. Applying changes
in-memory state only (no metrics, no logs); those belong to the writer, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .logging import get_logger
from .security.blocking import BlockList
from .security.denylist import Denylist
from .store import signals as signal_store
from .store.db import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

log = get_logger("portcullis.signals")
PAGE = 5000
MAX_HOLES = 1000  # beyond this, holes are kept as one range
MAX_WAIT_SECONDS = 600.0


@dataclass
class _Pending:
    """Ids (`ids`, or the range low < id <= high) that may still commit."""

    since: float
    ids: set[int] = field(default_factory=set)
    low: int = 0
    high: int = 0
    writers: frozenset[str] | None = None  # still to end before it is settled
    reread: bool = False  # a range: read it again at the next poll


class SignalBus:
    def __init__(
        self,
        db: Database,
        denylist: Denylist,
        blocks: BlockList,
        on_block_change: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.denylist = denylist
        self.blocks = blocks
        self.on_block_change = on_block_change
        self.highest = 0
        self.holes: dict[int, _Pending] = {}  # one _Pending per poll that found holes
        self.ranges: list[_Pending] = []
        self._lock = asyncio.Lock()

    # Applying -------------------------------------------------------------------

    def apply(
        self, kind: str, value: str, until: float, data: str | None, signal_id: int | None
    ) -> None:
        """Apply one signal to this process's memory (idempotent)."""
        if kind == "jti":
            self.denylist.revoke_jti(value, until)
        elif kind == "sid":
            self.denylist.revoke_sid(value, until)
        elif kind == "block":
            if self.blocks.add(value, until, data or "abuse", signal_id) and self.on_block_change:
                self.on_block_change(value)
        elif kind == "unblock":
            if self.blocks.remove(value, signal_id, until) and self.on_block_change:
                self.on_block_change(value)

    def _apply_row(self, row: signal_store.Signal) -> None:
        self.apply(row.kind, row.value, row.expires_us / 1_000_000, row.data, row.id)

    # Polling --------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many ids (ranges count as one) may still commit below the highest seen."""
        return sum(len(p.ids) for p in self.holes.values()) + len(self.ranges)

    async def poll(self) -> None:
        async with self._lock, self.db.read() as conn:
            postgres = conn.dialect.name == "postgresql"
            groups = [*self.holes.values(), *self.ranges]
            if postgres and groups:
                writers = await signal_store.inflight_writers(conn)
                for group in groups:
                    if group.writers is None:  # noticed at the last read: its writer
                        group.writers, group.reread = writers, True  # is here or ended
                    elif group.writers - writers != frozenset():
                        group.writers, group.reread = group.writers & writers, True
            for group in self.ranges:
                if group.reread or not postgres:
                    await self._read_range(conn, group.low, group.high)
            await self._read_new(conn, postgres)
        self._settle(postgres)

    async def _read_range(self, conn: AsyncConnection, low: int, high: int) -> None:
        while True:
            rows = await signal_store.signals_between(conn, low=low, high=high, limit=PAGE)
            for row in rows:
                self._apply_row(row)
            if len(rows) < PAGE:
                return
            low = rows[-1].id

    async def _read_new(self, conn: AsyncConnection, postgres: bool) -> None:
        wanted = {i for group in self.holes.values() for i in group.ids}
        gaps: list[tuple[int, int]] = []  # runs of missing ids, first to last
        after = self.highest
        while True:
            rows = await signal_store.signals_after(conn, after_id=after, also=wanted, limit=PAGE)
            for row in rows:
                self._apply_row(row)
                if row.id <= self.highest:
                    for group in self.holes.values():
                        group.ids.discard(row.id)
                    continue
                if postgres and row.id > after + 1:
                    gaps.append((after + 1, row.id - 1))
                after = row.id
            if len(rows) < PAGE:
                break
            wanted = set()
        if gaps:
            now = time.monotonic()
            count = sum(last - first + 1 for first, last in gaps)
            if count + self.pending > MAX_HOLES:
                old = [i for group in self.holes.values() for i in group.ids]
                low = min([gaps[0][0], *old]) - 1
                self.holes = {}
                self.ranges.append(_Pending(since=now, low=low, high=gaps[-1][1]))
            else:
                ids = {i for first, last in gaps for i in range(first, last + 1)}
                self.holes[after] = _Pending(since=now, ids=ids)
        self.highest = after

    def _settle(self, postgres: bool) -> None:
        """Drop what is proven permanent (or has waited too long)."""
        now = time.monotonic()

        def done(group: _Pending) -> bool:
            if not postgres or (group.writers == frozenset() and not group.reread):
                return True
            if now - group.since > MAX_WAIT_SECONDS:
                log.error(
                    "signals.hole_abandoned",
                    waited=round(now - group.since),
                    ids=len(group.ids) or f"{group.low + 1}-{group.high}",
                )
                return True
            return False

        for group in [*self.ranges, *self.holes.values()]:
            group.reread = False  # read just now
        self.ranges = [g for g in self.ranges if not done(g)]
        self.holes = {k: g for k, g in self.holes.items() if g.ids and not done(g)}
