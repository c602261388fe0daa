"""Idempotency records, written in the same transaction as the resource they answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us, typed_row
from .tables import idempotency

KEEP_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first answer given to a key: replayed as it was for the same request."""

    request_hash: str
    status: int
    body: str
    location: str | None


async def get_record(conn: AsyncConnection, *, owner_id: str, key: str) -> IdempotencyRecord | None:
    row = (
        await conn.execute(
            select(idempotency).where(
                idempotency.c.owner_id == owner_id,
                idempotency.c.key == key,
                idempotency.c.created_us > now_us() - KEEP_US,
            )
        )
    ).first()
    if row is None:
        return None
    return typed_row(IdempotencyRecord, row)


async def save_record(
    conn: AsyncConnection,
    *,
    owner_id: str,
    key: str,
    request_hash: str,
    status: int,
    body: str,
    location: str | None,
) -> None:
    # An expired record with the same key may still be there: replace it. A live one is
    # never deleted here, so a concurrent duplicate fails on the primary key instead.
    await conn.execute(
        delete(idempotency).where(
            idempotency.c.owner_id == owner_id,
            idempotency.c.key == key,
            idempotency.c.created_us <= now_us() - KEEP_US,
        )
    )
    await conn.execute(
        idempotency.insert().values(
            owner_id=owner_id,
            key=key,
            request_hash=request_hash,
            status=status,
            body=body,
            location=location,
            created_us=now_us(),
        )
    )


async def purge_expired(conn: AsyncConnection) -> None:
    await conn.execute(delete(idempotency).where(idempotency.c.created_us <= now_us() - KEEP_US))
