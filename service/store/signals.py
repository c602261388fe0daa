"""Cross-process signals (revocations, blocks) and the blocks table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us, typed_row
from .tables import blocks, signals


@dataclass(frozen=True)
class Signal:
    id: int
    kind: str
    value: str
    expires_us: int
    data: str | None


@dataclass(frozen=True, slots=True)
class BlockRow:
    ip: str  # the client key: an address, or an IPv6 prefix
    until_us: int
    reason: str
    level: int  # 0 for a first block, +1 for each repeat within a day
    created_us: int


@dataclass(frozen=True, slots=True)
class NewBlock:
    until_us: int
    seconds: int


async def add_signal(
    conn: AsyncConnection, *, kind: str, value: str, expires_us: int, data: str | None = None
) -> int:
    """Insert a signal in the caller's transaction; return its id."""
    result = await conn.execute(
        signals.insert().values(kind=kind, value=value, expires_us=expires_us, data=data)
    )
    key: Any = result.inserted_primary_key  # a one-row INSERT always reports its key
    return int(key[0])


async def has_signal(conn: AsyncConnection, *, kind: str, value: str) -> bool:
    """Whether a live signal `kind`/`value` exists (a revocation is never written twice)."""
    row = await conn.execute(
        select(signals.c.id)
        .where(signals.c.kind == kind, signals.c.value == value, signals.c.expires_us > now_us())
        .limit(1)
    )
    return row.first() is not None


async def signals_after(
    conn: AsyncConnection, *, after_id: int, also: Collection[int] = (), limit: int = 5000
) -> list[Signal]:
    """Live signals with an id above `after_id`, or in `also`, in id order."""
    where = signals.c.id > after_id
    if also:
        where = or_(where, signals.c.id.in_(sorted(also)))
    rows = await conn.execute(
        select(signals)
        .where(where, signals.c.expires_us > now_us())
        .order_by(signals.c.id)
        .limit(limit)
    )
    return [typed_row(Signal, r) for r in rows]


async def signals_between(
    conn: AsyncConnection, *, low: int, high: int, limit: int = 5000
) -> list[Signal]:
    """Live signals with low < id <= high, in id order."""
    rows = await conn.execute(
        select(signals)
        .where(signals.c.id > low, signals.c.id <= high, signals.c.expires_us > now_us())
        .order_by(signals.c.id)
        .limit(limit)
    )
    return [typed_row(Signal, r) for r in rows]


_INFLIGHT = text(
    "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'relation'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND relation = CAST(:table AS regclass) AND mode = 'RowExclusiveLock'"
)


async def inflight_writers(conn: AsyncConnection) -> frozenset[str]:
    """PostgreSQL: the transactions that may still commit a signal (they hold the row
    lock every INSERT takes on the table before its sequence value, until they end)."""
    rows = await conn.execute(_INFLIGHT, {"table": signals.name})
    return frozenset(str(r[0]) for r in rows)


async def purge_expired(conn: AsyncConnection) -> None:
    # The newest row stays even when expired: SQLite hands the highest rowid out again
    # once its row is deleted, and a re-used id would look already read to the pollers.
    newest = select(func.max(signals.c.id)).scalar_subquery()
    await conn.execute(
        delete(signals).where(signals.c.expires_us <= now_us(), signals.c.id < newest)
    )


async def get_block(conn: AsyncConnection, *, ip: str) -> BlockRow | None:
    row = (await conn.execute(select(blocks).where(blocks.c.ip == ip))).first()
    return typed_row(BlockRow, row) if row else None


async def start_block(
    conn: AsyncConnection, *, ip: str, reason: str, base_seconds: int, max_seconds: int = 86400
) -> NewBlock | None:
    """Block `ip` unless it is blocked already; the block doubles on each repeat within
    a day. Returns the new block, or None when another process blocked it first."""
    now = now_us()
    existing = await get_block(conn, ip=ip)
    if existing is not None and existing.until_us > now:
        return None
    level = 0
    if existing is not None and existing.until_us > now - 86400 * 1_000_000:
        level = int(existing.level) + 1
    seconds = min(base_seconds * (2**level), max_seconds)
    values = {
        "ip": ip,
        "until_us": now + seconds * 1_000_000,
        "reason": reason,
        "level": level,
        "created_us": now,
    }
    if existing is None:
        await conn.execute(blocks.insert().values(**values))
    else:
        result = await conn.execute(
            update(blocks)
            .where(blocks.c.ip == ip, blocks.c.until_us <= now)
            .values(**{k: v for k, v in values.items() if k != "ip"})
        )
        if result.rowcount != 1:
            return None
    return NewBlock(until_us=now + seconds * 1_000_000, seconds=seconds)


async def lift_block(conn: AsyncConnection, *, ip: str) -> bool:
    result = await conn.execute(
        update(blocks)
        .where(blocks.c.ip == ip, blocks.c.until_us > now_us())
        .values(until_us=now_us())
    )
    return bool(result.rowcount)


async def list_blocks(
    conn: AsyncConnection, *, limit: int, after: tuple[int, str] | None
) -> list[BlockRow]:
    query = (
        select(blocks)
        .where(blocks.c.until_us > now_us())
        .order_by(blocks.c.until_us.desc(), blocks.c.ip.desc())
        .limit(limit)
    )
    if after is not None:
        until, ip = after
        query = query.where(
            (blocks.c.until_us < until) | ((blocks.c.until_us == until) & (blocks.c.ip < ip))
        )
    return [typed_row(BlockRow, r) for r in await conn.execute(query)]
