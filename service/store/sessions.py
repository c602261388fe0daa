"""Login sessions and their single-use refresh tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us, typed_row
from .tables import login_sessions, refresh_tokens


@dataclass(frozen=True, slots=True)
class SessionRow:
    sid: str
    user_id: str
    scope: str  # space-separated
    created_us: int
    expires_us: int
    revoked_us: int | None
    jkt: str | None = None  # the DPoP key its refresh tokens are bound to


@dataclass(frozen=True)
class RefreshOutcome:
    """`status`: ok | unknown | expired | revoked | reused."""

    status: str
    session: SessionRow | None = None


async def create_session(
    conn: AsyncConnection,
    *,
    sid: str,
    user_id: str,
    scope: str,
    ttl_seconds: int,
    jkt: str | None = None,
) -> None:
    now = now_us()
    await conn.execute(
        login_sessions.insert().values(
            sid=sid,
            user_id=user_id,
            scope=scope,
            created_us=now,
            expires_us=now + ttl_seconds * 1_000_000,
            revoked_us=None,
            jkt=jkt,
        )
    )


async def add_refresh_token(conn: AsyncConnection, *, token_hash: str, sid: str) -> None:
    await conn.execute(
        refresh_tokens.insert().values(
            token_hash=token_hash, sid=sid, created_us=now_us(), used_us=None
        )
    )


async def use_refresh_token(conn: AsyncConnection, *, token_hash: str) -> RefreshOutcome:
    """Spend a refresh token exactly once (a conditional UPDATE decides races)."""
    row = (
        await conn.execute(
            select(refresh_tokens.c.sid, refresh_tokens.c.used_us).where(
                refresh_tokens.c.token_hash == token_hash
            )
        )
    ).first()
    if row is None:
        return RefreshOutcome("unknown")
    session_row = (
        await conn.execute(select(login_sessions).where(login_sessions.c.sid == row.sid))
    ).first()
    if session_row is None:
        return RefreshOutcome("unknown")
    session = typed_row(SessionRow, session_row)
    if row.used_us is not None:
        return RefreshOutcome("reused", session)
    result = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_us.is_(None))
        .values(used_us=now_us())
    )
    if result.rowcount != 1:  # lost a race with a concurrent use: that is reuse too
        return RefreshOutcome("reused", session)
    if session.revoked_us is not None:
        return RefreshOutcome("revoked", session)
    if session.expires_us <= now_us():
        return RefreshOutcome("expired", session)
    return RefreshOutcome("ok", session)


async def find_refresh_session(conn: AsyncConnection, *, token_hash: str) -> SessionRow | None:
    row = (
        await conn.execute(
            select(login_sessions)
            .join(refresh_tokens, refresh_tokens.c.sid == login_sessions.c.sid)
            .where(refresh_tokens.c.token_hash == token_hash)
        )
    ).first()
    return typed_row(SessionRow, row) if row else None


async def get_session(conn: AsyncConnection, *, sid: str, lock: bool = False) -> SessionRow | None:
    """The session; with `lock`, its row stays locked until the transaction ends."""
    query = select(login_sessions).where(login_sessions.c.sid == sid)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return typed_row(SessionRow, row) if row else None


async def revoke_session(conn: AsyncConnection, *, sid: str) -> bool:
    """Revoke a live session; False when it is unknown or was revoked already."""
    result = await conn.execute(
        update(login_sessions)
        .where(login_sessions.c.sid == sid, login_sessions.c.revoked_us.is_(None))
        .values(revoked_us=now_us())
    )
    return bool(result.rowcount == 1)


async def revoke_user_sessions(conn: AsyncConnection, *, user_id: str) -> list[SessionRow]:
    """Revoke every live session of a user; return them (sid, expires_us)."""
    now = now_us()
    rows = (
        await conn.execute(
            select(login_sessions).where(
                login_sessions.c.user_id == user_id,
                login_sessions.c.revoked_us.is_(None),
                login_sessions.c.expires_us > now,
            )
        )
    ).all()
    await conn.execute(
        update(login_sessions)
        .where(login_sessions.c.user_id == user_id, login_sessions.c.revoked_us.is_(None))
        .values(revoked_us=now)
    )
    return [typed_row(SessionRow, r) for r in rows]
