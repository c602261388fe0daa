"""A user's own account: changing its password, deleting it; and an operator's password
reset. Each revokes what it must through the signal bus, so every process and replica
refuses the tokens concerned within its poll interval (at once with Redis).

A wrong password here is a failed login: it spends the `login` budgets of the password
grant (and its 403 counts toward blocking like any 403 on `/v1`).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import Conflict, Forbidden, InactivePrincipal, TooManyRequests, ValidationFailed
from ..logging import security_event
from ..security.tokens import LEEWAY_SECONDS, Principal
from ..store import accounts as account_store
from ..store import audit, sessions
from ..store import users as user_store
from ..store.db import now
from ..store.users import UserRow
from .admins import keep_an_admin
from .login_throttle import POLICY, admit, login_gate, succeeded
from .parts import Accounts, Parts, Signalling
from .records import Record


class Operator(Accounts, Signalling, Protocol):
    """The command line's reset: a database, a password hasher and the signal bus."""


async def _weak(svc: Accounts, password: str, username: str, field: str) -> None:
    problems = await svc.passwords.problems(password, username)
    if problems:
        raise ValidationFailed(
            errors=[{"loc": ["body", field], "msg": f"password {p}"} for p in problems]
        )


async def _own_user(svc: Parts, principal: Principal) -> UserRow:
    """The caller's user row: a user's own login only (not a client or external token)."""
    if principal.sid is None or principal.is_external:
        raise Forbidden("Only a user's own login can change or delete its account.")
    user = await user_store.get_user(svc.db, user_id=principal.sub)
    if user is None or user.disabled:
        raise InactivePrincipal("The user no longer exists.")
    return user


async def _check_password(svc: Parts, user: UserRow, password: str, ip: str) -> None:
    """The password grant's budgets and Argon2 check; 429 when spent, 403 when wrong."""
    gate = login_gate(
        svc.settings.login_limits,
        username=user.username,
        ip=ip,
        ipv6_prefix=svc.settings.ipv6_prefix,
    )
    admission = await admit(svc.limiter, gate)
    verdict = admission.verdict
    if not verdict.allowed:
        svc.metrics.ratelimit_rejections.labels(POLICY).inc()
        security_event("ratelimit.exceeded", reason=POLICY, retry_after=verdict.retry_after)
        raise TooManyRequests(verdict.retry_after, policy=POLICY)
    if await svc.passwords.verify_or_dummy(user.password_hash, password):
        await succeeded(svc.limiter, gate, admission)
        return
    # the failure was counted when the attempt was admitted (login_throttle)
    svc.metrics.logins.labels("failure").inc()
    security_event("auth.login_failed", reason="bad_password", principal=user.id)
    async with svc.db.begin() as conn:
        await audit.record(conn, event="auth.login_failed", actor=user.id, target=None, ip=ip)
    raise Forbidden("The password is incorrect.")


async def _still(conn: AsyncConnection, user: UserRow) -> None:
    """Under the row lock: the user as it was checked (not disabled, same password)."""
    current = await user_store.get_user(conn, user_id=user.id, lock=True)
    if current is None or current.disabled:
        raise InactivePrincipal("The user no longer exists.")
    if current.password_hash != user.password_hash:
        raise Conflict("The password was changed meanwhile; try again.")


async def _revoke(svc: Signalling, conn: AsyncConnection, user_id: str, sids: list[str]) -> None:
    """Refuse the sessions' access tokens everywhere, and drop the cached user row."""
    until = now() + svc.settings.access_token_ttl + LEEWAY_SECONDS
    for sid in sids:
        await svc.bus.record(conn, kind="sid", value=sid, until=until)
    await svc.bus.record_changed(conn, Record("user", user_id))


async def change_password(
    svc: Parts, principal: Principal, *, current: str, new: str, ip: str
) -> None:
    """The caller's own password: every other session of the user is revoked, the
    caller's stays."""
    user = await _own_user(svc, principal)
    await _weak(svc, new, user.username, "new_password")
    await _check_password(svc, user, current, ip)
    new_hash = await svc.passwords.hash(new)
    async with svc.db.begin() as conn:
        await _still(conn, user)
        await user_store.set_password_hash(conn, user_id=user.id, password_hash=new_hash)
        keep = str(principal.sid)
        sids = await account_store.revoke_other_sessions(conn, user_id=user.id, keep_sid=keep)
        await _revoke(svc, conn, user.id, sids)
        await audit.record(
            conn, event="user.password_changed", actor=user.id, target=user.id, ip=ip
        )
    await svc.bus.announce()


async def delete_account(svc: Parts, principal: Principal, *, password: str, ip: str) -> None:
    """The user, its notes, idempotency records and sessions, in one transaction; every
    token of theirs is refused. The last enabled admin cannot delete itself (409)."""
    user = await _own_user(svc, principal)
    await _check_password(svc, user, password, ip)
    async with svc.db.begin() as conn:
        if user.role == "admin":
            await keep_an_admin(conn, user_id=user.id)
        await _still(conn, user)
        sids = await account_store.delete_user(conn, user_id=user.id)
        await _revoke(svc, conn, user.id, sids)
        await audit.record(conn, event="user.deleted", actor=user.id, target=user.id, ip=ip)
    await svc.bus.announce()


async def reset_password(svc: Operator, *, username: str, new: str, actor: str) -> UserRow:
    """An operator's reset: the new password, and every session of the user revoked.
    LookupError when there is no such user."""
    user = await user_store.get_user_by_name(svc.db, username=username)
    if user is None:
        raise LookupError(username)
    await _weak(svc, new, user.username, "password")
    new_hash = await svc.passwords.hash(new)
    async with svc.db.begin() as conn:
        if await user_store.get_user(conn, user_id=user.id, lock=True) is None:
            raise LookupError(username)
        await user_store.set_password_hash(conn, user_id=user.id, password_hash=new_hash)
        revoked = await sessions.revoke_user_sessions(conn, user_id=user.id)
        await _revoke(svc, conn, user.id, [s.sid for s in revoked])
        await audit.record(
            conn, event="user.password_changed", actor=actor, target=user.id, ip=None
        )
    await svc.bus.announce()
    return user
