"""Account lifecycle: a user's other sessions, its deletion with everything it owns, and
the enabled administrators (locked, so two changes that would each leave the other as
the last admin take turns)."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_us
from .tables import idempotency, login_sessions, note_tags, notes, refresh_tokens, users


async def revoke_other_sessions(conn: AsyncConnection, *, user_id: str, keep_sid: str) -> list[str]:
    """Revoke every live session of the user except `keep_sid`; the sids revoked."""
    now = now_us()
    live = (login_sessions.c.user_id == user_id) & login_sessions.c.revoked_us.is_(None)
    others = live & (login_sessions.c.sid != keep_sid)
    sids = [row.sid for row in await conn.execute(select(login_sessions.c.sid).where(others))]
    if sids:
        await conn.execute(update(login_sessions).where(others).values(revoked_us=now))
    return sids


async def delete_user(conn: AsyncConnection, *, user_id: str) -> list[str]:
    """Delete the user, its notes, idempotency records, login sessions and refresh
    tokens; the sids of the sessions that were still live."""
    sids = [
        row.sid
        for row in await conn.execute(
            select(login_sessions.c.sid).where(
                login_sessions.c.user_id == user_id, login_sessions.c.revoked_us.is_(None)
            )
        )
    ]
    await conn.execute(delete(note_tags).where(note_tags.c.owner_id == user_id))
    await conn.execute(delete(notes).where(notes.c.owner_id == user_id))
    await conn.execute(delete(idempotency).where(idempotency.c.owner_id == user_id))
    own = select(login_sessions.c.sid).where(login_sessions.c.user_id == user_id)
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.sid.in_(own)))
    await conn.execute(delete(login_sessions).where(login_sessions.c.user_id == user_id))
    await conn.execute(delete(users).where(users.c.id == user_id))
    return sids


async def lock_enabled_admins(conn: AsyncConnection) -> list[str]:
    """The ids of the enabled admins, their rows locked until the transaction ends
    (PostgreSQL re-checks the condition after waiting, so a row another transaction has
    just demoted or disabled is not counted; SQLite's writers are serial anyway)."""
    query = (
        select(users.c.id)
        .where(users.c.role == "admin", users.c.disabled.is_(False))
        .order_by(users.c.id)
        .with_for_update()
    )
    return [row.id for row in await conn.execute(query)]
