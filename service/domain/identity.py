"""Identity rules: registration, revocation, user and client administration (the grants
are in `grants.py`).

Plain async functions over the parts they use (the protocols of `parts.py`); they raise
the errors of `service.errors` and never touch HTTP objects.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ..errors import Conflict, InactivePrincipal, OAuthError, ValidationFailed
from ..models.users import ALL_SCOPES, ClientCreated, ClientPublic, UserPublic
from ..security.tokens import LEEWAY_SECONDS, Principal, TokenRejected
from ..store import audit, sessions
from ..store import signals as signal_store
from ..store import users as user_store
from ..store.db import now
from ..store.users import ClientRow, UserRow
from .admins import keep_an_admin, removes_an_admin
from .parts import Accounts, Profiles, Revoking, Signalling, Storage
from .records import Record

FIRST_PARTY_CLIENT = "portcullis"
DUMMY_SECRET_HASH = hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def narrow_scope(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """RFC 6749 §3.3: the requested scope, which must be within what the holder has."""
    if requested is None or not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    if not wanted <= allowed:
        raise OAuthError("invalid_scope", "The requested scope exceeds what is granted.")
    return wanted


# Registration ---------------------------------------------------------------------


async def register(
    svc: Accounts, *, username: str, password: str, role: str = "user", ip: str | None = None
) -> UserRow:
    problems = await svc.passwords.problems(password, username)
    if problems:
        raise ValidationFailed(
            errors=[{"loc": ["body", "password"], "msg": f"password {p}"} for p in problems]
        )
    password_hash = await svc.passwords.hash(password)
    async with svc.db.begin() as conn:
        try:
            user = await user_store.create_user(
                conn, username=username, password_hash=password_hash, role=role
            )
        except user_store.UsernameTaken:
            raise Conflict("That username is taken.") from None
        await audit.record(conn, event="user.registered", actor=user.id, target=user.id, ip=ip)
    return user


async def profile(svc: Profiles, principal: Principal) -> UserPublic | ClientPublic:
    """The local record behind a valid token: its user, or for a client token its client.
    A record disabled or deleted since the token was issued is an InactivePrincipal."""
    if principal.is_client:
        client = await svc.records.client_view(svc.db, principal.client_id)
        if client is None or client[0].disabled:
            raise InactivePrincipal("The client no longer exists.")
        return client[1]
    user = await svc.records.user_view(svc.db, principal.sub)
    if user is None or user[0].disabled:
        raise InactivePrincipal("The user no longer exists.")
    return user[1]


async def cached_user(svc: Profiles, user_id: str) -> UserRow | None:
    """The user, from the record cache when this process read it lately (domain/records)."""
    return await svc.records.user(svc.db, user_id)


async def cached_client(svc: Profiles, client_id: str) -> ClientRow | None:
    """The client, from the record cache when this process read it lately."""
    return await svc.records.client(svc.db, client_id)


# Revocation -----------------------------------------------------------------------


async def revoke_session(svc: Signalling, conn: Any, sid: str) -> bool:
    """Revoke a login session: its refresh tokens (DB) and its access tokens (sid).
    False, and nothing written, when it was revoked already."""
    if not await sessions.revoke_session(conn, sid=sid):
        return False
    until = now() + svc.settings.access_token_ttl + LEEWAY_SECONDS
    await svc.bus.record(conn, kind="sid", value=sid, until=until)
    return True


async def _revoke_access_token(svc: Revoking, token: str, ip: str) -> bool:
    """True when `token` is one of our live access tokens (revoked now or before)."""
    if token.count(".") != 2:
        return False
    try:
        principal = svc.tokens.verify(token)
    except TokenRejected:
        return False
    if svc.denylist.is_revoked(principal):
        return True  # known here already: nothing to write
    async with svc.db.begin() as conn:
        if principal.sid is not None:
            # locks the session row, so two revocations of one token take turns
            session = await sessions.get_session(conn, sid=principal.sid, lock=True)
            if session is None or session.revoked_us is not None:
                return True
        if await signal_store.has_signal(conn, kind="jti", value=principal.jti):
            return True
        await svc.bus.record(
            conn, kind="jti", value=principal.jti, until=principal.exp + LEEWAY_SECONDS
        )
        await audit.record(
            conn, event="auth.revoked", actor=principal.sub, target="access_token", ip=ip
        )
    await svc.bus.announce()
    return True


async def _revoke_refresh_token(svc: Signalling, token: str, ip: str) -> bool:
    """True when `token` is one of our refresh tokens (its session revoked now or before)."""
    async with svc.db.begin() as conn:
        session = await sessions.find_refresh_session(conn, token_hash=sha256(token))
        if session is None:
            return False
        if not await revoke_session(svc, conn, session.sid):
            return True
        await audit.record(
            conn, event="auth.revoked", actor=session.user_id, target="refresh_token", ip=ip
        )
    await svc.bus.announce()
    return True


async def revoke(svc: Revoking, token: str, hint: str | None, ip: str) -> None:
    """RFC 7009: possession of the token is enough; unknown tokens are not an error.
    The hint only orders the search (§2.1): every token type is tried. Revoking a
    token again writes nothing."""
    if not token or len(token) > 4096:
        return
    kinds = [_revoke_access_token, _revoke_refresh_token]
    if hint == "refresh_token":
        kinds.reverse()
    for attempt in kinds:
        if await attempt(svc, token, ip):
            return


# Administration -------------------------------------------------------------------


async def update_user(
    svc: Signalling, *, user_id: str, changes: dict[str, Any], actor: str, ip: str
) -> UserRow | None:
    """Disable/enable or change role; either revokes the user's live sessions, so the
    change takes effect on the user's next request."""
    async with svc.db.begin() as conn:
        if removes_an_admin(changes):
            await keep_an_admin(conn, user_id=user_id)
        # Locked: a password login creating a session for this user waits for this
        # change, or finishes first and has its session revoked below.
        before = await user_store.get_user(conn, user_id=user_id, lock=True)
        if before is None:
            return None
        user = await user_store.update_user(conn, user_id=user_id, changes=changes)
        if user is None:
            return None
        disabled_now = changes.get("disabled") is True and not before.disabled
        role_changed = "role" in changes and changes["role"] != before.role
        # every process drops its cached copy of this user (domain/records)
        await svc.bus.record_changed(conn, Record("user", user_id))
        if disabled_now or role_changed:
            for session in await sessions.revoke_user_sessions(conn, user_id=user_id):
                until = now() + svc.settings.access_token_ttl + LEEWAY_SECONDS
                await svc.bus.record(conn, kind="sid", value=session.sid, until=until)
        if disabled_now:
            await audit.record(conn, event="user.disabled", actor=actor, target=user_id, ip=ip)
        elif changes.get("disabled") is False and before.disabled:
            await audit.record(conn, event="user.enabled", actor=actor, target=user_id, ip=ip)
        if role_changed:
            await audit.record(
                conn,
                event="user.role_changed",
                actor=actor,
                target=f"{user_id}:{user.role}",
                ip=ip,
            )
    await svc.bus.announce()
    return user


async def create_client(
    svc: Storage,
    *,
    name: str,
    scopes: list[str],
    actor: str | None,
    ip: str | None,
    dpop_bound_access_tokens: bool = False,
) -> ClientCreated:
    if not set(scopes) <= ALL_SCOPES:
        raise ValidationFailed(errors=[{"loc": ["body", "scopes"], "msg": "unknown scope"}])
    client_id = "c_" + secrets.token_urlsafe(16)
    secret = secrets.token_urlsafe(32)
    async with svc.db.begin() as conn:
        await user_store.create_client(
            conn,
            client_id=client_id,
            name=name,
            secret_hash=sha256(secret),
            scopes=" ".join(sorted(set(scopes))),
            dpop_bound_access_tokens=dpop_bound_access_tokens,
        )
        await audit.record(conn, event="client.created", actor=actor, target=client_id, ip=ip)
    return ClientCreated(
        client_id=client_id,
        name=name,
        scopes=sorted(set(scopes)),
        client_secret=secret,
    )
