"""Cross-process signals (revocations, blocks) and the blocks table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us
from .tables import blocks, signals


async def add_signal(
    conn: AsyncConnection, *, kind: str, value: str, expires_us: int, data: str | None = None
) -> None:
    await conn.execute(
        signals.insert().values(kind=kind, value=value, expires_us=expires_us, data=data)
    )


async def has_signal(conn: AsyncConnection, *, kind: str, value: str) -> bool:
    """Whether a live signal `kind`/`value` exists (a revocation is never written twice)."""
    row = await conn.execute(
        select(signals.c.id)
        .where(signals.c.kind == kind, signals.c.value == value, signals.c.expires_us > now_us())
        .limit(1)
    )
    return row.first() is not None


async def signals_after(
    conn: AsyncConnection, *, after_id: int, limit: int = 5000
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(signals)
        .where(signals.c.id > after_id, signals.c.expires_us > now_us())
        .order_by(signals.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def last_signal_id(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.coalesce(func.max(signals.c.id), 0))) or 0)


async def purge_expired(conn: AsyncConnection) -> None:
    await conn.execute(delete(signals).where(signals.c.expires_us <= now_us()))


async def get_block(conn: AsyncConnection, *, ip: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(blocks).where(blocks.c.ip == ip))).first()
    return dict(row._mapping) if row else None


async def start_block(
    conn: AsyncConnection, *, ip: str, reason: str, base_seconds: int, max_seconds: int = 86400
) -> dict[str, Any] | None:
    """Block `ip` unless it is blocked already; the block doubles on each repeat within
    a day. Returns the new block, or None when another process blocked it first."""
    now = now_us()
    existing = await get_block(conn, ip=ip)
    if existing is not None and existing["until_us"] > now:
        return None
    level = 0
    if existing is not None and existing["until_us"] > now - 86400 * 1_000_000:
        level = int(existing["level"]) + 1
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
    return values | {"seconds": seconds}


async def lift_block(conn: AsyncConnection, *, ip: str) -> bool:
    result = await conn.execute(
        update(blocks)
        .where(blocks.c.ip == ip, blocks.c.until_us > now_us())
        .values(until_us=now_us())
    )
    return bool(result.rowcount)


async def list_blocks(
    conn: AsyncConnection, *, limit: int, after: tuple[int, str] | None
) -> list[dict[str, Any]]:
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
    return [dict(r._mapping) for r in await conn.execute(query)]
