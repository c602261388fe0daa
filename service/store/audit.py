"""The append-only audit trail. No function here updates or deletes an event."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us
from .tables import audit


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    ts_us: int
    event: str
    actor: str | None
    target: str | None
    ip: str | None


async def record(
    conn: AsyncConnection,
    *,
    event: str,
    actor: str | None,
    target: str | None,
    ip: str | None,
) -> None:
    await conn.execute(
        audit.insert().values(
            ts_us=now_us(),
            event=event,
            actor=actor,
            target=(target or None) and target[:255],
            ip=ip,
        )
    )


async def list_events(
    conn: AsyncConnection, *, limit: int, before_id: int | None
) -> list[AuditRow]:
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit.c.id < before_id)
    return [
        AuditRow(id=r.id, ts_us=r.ts_us, event=r.event, actor=r.actor, target=r.target, ip=r.ip)
        for r in await conn.execute(query)
    ]
