"""DPoP proof ids already used (the replay cache's table when Redis is not configured)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from .db import Database, now_us
from .tables import dpop_proofs


async def record_first_use(db: Database, *, key_hash: str, ttl_seconds: int) -> bool:
    """Insert the proof id; False when it is there already (one statement: the primary
    key decides a race between processes and replicas)."""
    try:
        async with db.begin() as conn:
            await conn.execute(
                dpop_proofs.insert().values(
                    key_hash=key_hash, expires_us=now_us() + ttl_seconds * 1_000_000
                )
            )
    except IntegrityError:
        return False
    return True


async def purge_expired(db: Database) -> int:
    async with db.begin() as conn:
        result = await conn.execute(delete(dpop_proofs).where(dpop_proofs.c.expires_us < now_us()))
    return int(result.rowcount or 0)
