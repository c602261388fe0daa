"""The signal bus: records signals (revocations, blocks, unblocks) and delivers every
committed one to every process, none lost, whatever order the transactions commit in.

Writers call `record` inside their transaction and `announce` after commit; each process
runs `run` (a poll every `poll_seconds`, at once when Redis announces a commit) and, with
Redis, `listen` (the pub/sub wake-up).

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
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .domain.records import RECORD_TTL_SECONDS, SIGNAL_KIND, Record, RecordCache
from .logging import get_logger
from .security.blocking import BlockList, FailureCounter
from .security.denylist import Denylist
from .store import signals as signal_store
from .store.db import Database, now

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

log = get_logger("portcullis.signals")
PAGE = 5000
MAX_HOLES = 1000  # beyond this, holes are kept as one range
MAX_WAIT_SECONDS = 600.0
CHANNEL = "portcullis:signals"
POLL_SECONDS = 0.5


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
        failures: FailureCounter | None = None,
        redis: Any = None,
        records: RecordCache | None = None,
    ) -> None:
        self.db = db
        self.denylist = denylist
        self.blocks = blocks
        self.records = records  # `principal` signals drop a changed user's cached row
        self.failures = failures  # blocks and unblocks reset the address's count
        self.redis = redis
        self.poll_seconds = POLL_SECONDS
        self.highest = 0
        self.holes: dict[int, _Pending] = {}  # one _Pending per poll that found holes
        self.ranges: list[_Pending] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    # Writing --------------------------------------------------------------------

    async def record(
        self, conn: AsyncConnection, *, kind: str, value: str, until: float, data: str = ""
    ) -> None:
        """Record a signal in the caller's transaction and apply it here at once (should
        the transaction fail, this process errs on the safe side until the entry expires).
        Blocks and unblocks reset the address's failure count (see security/blocking)."""
        signal_id = await signal_store.add_signal(
            conn, kind=kind, value=value, expires_us=int(until * 1_000_000), data=data or None
        )
        self.apply(kind, value, until, data or None, signal_id)
        if kind in ("block", "unblock") and self.failures is not None:
            await self.failures.reset(value)

    async def record_changed(self, conn: AsyncConnection, record: Record) -> None:
        """In the caller's transaction: every process drops its cached copy of `record`
        (domain/records). Kept twice the cache's TTL: a process polling late still sees it."""
        await self.record(
            conn,
            kind=SIGNAL_KIND,
            value=record.signal_value(),
            until=now() + 2 * RECORD_TTL_SECONDS,
        )

    async def announce(self) -> None:
        """After commit: wake the other processes now rather than at their next poll."""
        if self.redis is None:
            return
        with contextlib.suppress(Exception):
            await self.redis.publish(CHANNEL, b"1")

    # Running --------------------------------------------------------------------

    async def run(self, before_poll: Callable[[], Awaitable[None]]) -> None:
        """Poll every `poll_seconds`, or at once when woken; `before_poll` runs first
        (the start-up migration retry). A database outage is retried at the next tick."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await before_poll()
                await self.poll()
            except Exception as exc:  # database down: keep serving, retry next tick
                log.debug("signals.poll_failed", reason=type(exc).__name__)

    async def listen(self) -> None:
        """Wake `run` whenever another process announces a commit (Redis pub/sub)."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    # Applying -------------------------------------------------------------------

    def apply(
        self, kind: str, value: str, until: float, data: str | None, signal_id: int | None
    ) -> None:
        """Apply one signal to this process's memory (idempotent)."""
        if kind == "jti":
            self.denylist.revoke_jti(value, until)
        elif kind == "sid":
            self.denylist.revoke_sid(value, until)
        elif kind == "subject":  # data: "<last exp covered> <scopes kept...>"
            exp_until, *keep = (data or "0").split()
            self.denylist.revoke_subject(
                value, exp_until=int(exp_until), keep=frozenset(keep), until=until
            )
        elif kind == "block":
            if (
                self.blocks.add(value, until, data or "abuse", signal_id)
                and self.failures is not None
            ):
                self.failures.reset_here(value)
        elif kind == "unblock":
            if self.blocks.remove(value, signal_id, until) and self.failures is not None:
                self.failures.reset_here(value)
        elif kind == SIGNAL_KIND and self.records is not None:
            self.records.drop_signalled(value)

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
