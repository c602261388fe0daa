"""The append-only audit trail. No function here updates or deletes an event."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us, typed_row
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


async def list_events(conn: AsyncConnection, *, limit: int, after: int | None) -> list[AuditRow]:
    """Newest first, keyset-paged by id: `after` is the last id of the previous page."""
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if after is not None:
        query = query.where(audit.c.id < after)
    return [typed_row(AuditRow, r) for r in await conn.execute(query)]
