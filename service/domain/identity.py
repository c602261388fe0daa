"""Identity rules: registration, revocation, user and client administration (the grants
are in `grants.py`).

Plain async functions over the service container; they raise the errors of
`service.errors` and never touch HTTP objects.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ..errors import Conflict, OAuthError, ValidationFailed
from ..models.common import iso
from ..models.users import ALL_SCOPES, ClientCreated, UserPublic
from ..security.passwords import password_problems
from ..security.tokens import LEEWAY_SECONDS, TokenRejected
from ..services import Services, now
from ..store import audit, sessions
from ..store import users as user_store

FIRST_PARTY_CLIENT = "portcullis"
# Per-account failed-login budget: beyond it the account answers 429 for a while,
# whatever the password, so guessing one account from many addresses stalls too.
ACCOUNT_FAILURES = (10, 900)
DUMMY_SECRET_HASH = hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def user_public(user: dict[str, Any]) -> UserPublic:
    return UserPublic(
        id=user["id"],
        username=user["username"],
        role=user["role"],
        disabled=bool(user["disabled"]),
        created_at=iso(user["created_us"]),
    )


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
    svc: Services, *, username: str, password: str, role: str = "user", ip: str | None = None
) -> dict[str, Any]:
    problems = password_problems(password, username)
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
        await audit.record(
            conn, event="user.registered", actor=user["id"], target=user["id"], ip=ip
        )
    return user


# Revocation -----------------------------------------------------------------------


async def revoke_session(svc: Services, conn: Any, sid: str) -> None:
    """Revoke a login session: its refresh tokens (DB) and its access tokens (sid)."""
    await sessions.revoke_session(conn, sid=sid)
    until = now() + svc.settings.access_token_ttl + LEEWAY_SECONDS
    await svc.signal(conn, kind="sid", value=sid, until=until)


async def revoke(svc: Services, token: str, hint: str | None, ip: str) -> None:
    """RFC 7009: possession of the token is enough; unknown tokens are not an error."""
    if not token or len(token) > 4096:
        return
    if hint != "refresh_token" and token.count(".") == 2:
        try:
            principal = svc.tokens.verify(token)
        except TokenRejected:
            principal = None
        if principal is not None:
            async with svc.db.begin() as conn:
                await svc.signal(
                    conn, kind="jti", value=principal.jti, until=principal.exp + LEEWAY_SECONDS
                )
                await audit.record(
                    conn, event="auth.revoked", actor=principal.sub, target="access_token", ip=ip
                )
            await svc.announce()
            return
    async with svc.db.begin() as conn:
        session = await sessions.find_refresh_session(conn, token_hash=sha256(token))
        if session is None:
            return
        await revoke_session(svc, conn, session["sid"])
        await audit.record(
            conn, event="auth.revoked", actor=session["user_id"], target="refresh_token", ip=ip
        )
    await svc.announce()


# Administration -------------------------------------------------------------------


async def update_user(
    svc: Services, *, user_id: str, changes: dict[str, Any], actor: str, ip: str
) -> dict[str, Any] | None:
    """Disable/enable or change role; either revokes the user's live sessions, so the
    change takes effect on the user's next request."""
    async with svc.db.begin() as conn:
        before = await user_store.get_user(conn, user_id=user_id)
        if before is None:
            return None
        user = await user_store.update_user(conn, user_id=user_id, changes=changes)
        if user is None:
            return None
        disabled_now = changes.get("disabled") is True and not before["disabled"]
        role_changed = "role" in changes and changes["role"] != before["role"]
        if disabled_now or role_changed:
            for session in await sessions.revoke_user_sessions(conn, user_id=user_id):
                until = now() + svc.settings.access_token_ttl + LEEWAY_SECONDS
                await svc.signal(conn, kind="sid", value=session["sid"], until=until)
        if disabled_now:
            await audit.record(conn, event="user.disabled", actor=actor, target=user_id, ip=ip)
        elif changes.get("disabled") is False and before["disabled"]:
            await audit.record(conn, event="user.enabled", actor=actor, target=user_id, ip=ip)
        if role_changed:
            await audit.record(
                conn,
                event="user.role_changed",
                actor=actor,
                target=f"{user_id}:{user['role']}",
                ip=ip,
            )
    await svc.announce()
    return user


async def create_client(
    svc: Services, *, name: str, scopes: list[str], actor: str | None, ip: str | None
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
        )
        await audit.record(conn, event="client.created", actor=actor, target=client_id, ip=ip)
    return ClientCreated(
        client_id=client_id, name=name, scopes=sorted(set(scopes)), client_secret=secret
    )
