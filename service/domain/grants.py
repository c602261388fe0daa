"""The RFC 6749 grants of the token endpoint: password, refresh_token, client_credentials.

Plain async functions over the parts they use (`parts.Parts`); they raise the errors of
`service.errors` and never touch HTTP objects.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from ..errors import OAuthError, TooManyRequests
from ..logging import security_event
from ..models.common import normalise_text
from ..models.users import ROLE_SCOPES, TokenOut
from ..security.ratelimit import Decision
from ..security.tokens import new_opaque_token
from ..store import audit, sessions
from ..store import users as user_store
from ..store.users import ClientRow
from .identity import (
    DUMMY_SECRET_HASH,
    FIRST_PARTY_CLIENT,
    cached_client,
    narrow_scope,
    revoke_session,
    sha256,
)
from .login_throttle import POLICY, Verdict, admit, login_gate, succeeded
from .parts import Parts

Report = Callable[[Decision], None]

# Grants ---------------------------------------------------------------------------


def _token_response(access: str, claims: dict[str, Any], refresh: str | None) -> TokenOut:
    return TokenOut(
        access_token=access,
        token_type="DPoP" if "cnf" in claims else "Bearer",  # RFC 9449 §5
        expires_in=int(claims["exp"]) - int(claims["iat"]),
        scope=str(claims["scope"]),
        refresh_token=refresh,
    )


def _throttled(svc: Parts, verdict: Verdict) -> TooManyRequests:
    svc.metrics.logins.labels("failure").inc()
    svc.metrics.ratelimit_rejections.labels(POLICY).inc()
    security_event("ratelimit.exceeded", reason=POLICY, retry_after=verdict.retry_after)
    security_event("auth.login_failed", reason="account_throttled")
    return TooManyRequests(verdict.retry_after, policy=POLICY)


async def _login_failed(svc: Parts, ip: str, reason: str, user_id: str | None) -> OAuthError:
    # the login budgets were spent when the attempt was admitted (login_throttle)
    await svc.abuse.record_failure(ip, "login_failed")
    svc.metrics.logins.labels("failure").inc()
    security_event("auth.login_failed", reason=reason, principal=user_id)
    async with svc.db.begin() as conn:
        await audit.record(conn, event="auth.login_failed", actor=user_id, target=None, ip=ip)
    return OAuthError("invalid_grant", "The username or password is incorrect.")


def _ignore(_decision: Decision) -> None:
    return None


async def password_grant(
    svc: Parts, form: dict[str, str], ip: str, report: Report = _ignore, *, jkt: str | None = None
) -> TokenOut:
    """`report` receives the state of the `login` policy for the RateLimit fields. With
    `jkt` (a DPoP proof's key), the session's refresh tokens and its access tokens are
    bound to that key (RFC 9449 §5)."""
    username = form.get("username", "")
    # the same normalisation as at registration (NFC, line ends), so both sides agree
    password = str(normalise_text(form.get("password", "")))
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    gate = login_gate(
        svc.settings.login_limits,
        username=username,
        ip=ip,
        ipv6_prefix=svc.settings.ipv6_prefix,
    )
    admission = await admit(svc.limiter, gate)
    verdict = admission.verdict
    report(verdict.as_decision())
    if not verdict.allowed:
        raise _throttled(svc, verdict)
    user = await user_store.get_user_by_name(svc.db, username=username)
    stored = user.password_hash if user is not None else None
    ok = await svc.passwords.verify_or_dummy(stored, password)
    if not ok or user is None or user.disabled:
        reason = "bad_password" if user is not None else "unknown_user"
        if ok and user is not None:
            reason = "disabled"
        raise await _login_failed(svc, ip, reason, user.id if user else None)
    await succeeded(svc.limiter, gate, admission)
    scopes = narrow_scope(form.get("scope"), ROLE_SCOPES[user.role])
    rehash = svc.passwords.needs_rehash(user.password_hash)
    new_hash = await svc.passwords.hash(password) if rehash else None
    sid = str(uuid.uuid4())
    refresh = new_opaque_token()
    async with svc.db.begin() as conn:
        # The user may have been disabled, demoted or given a new password while Argon2
        # ran: decide on the row as it is now, locked until the session exists, so an
        # admin change either comes first (and is seen here) or revokes this session.
        current = await user_store.get_user(conn, user_id=user.id, lock=True)
        if current is not None and not current.disabled and current.password_hash == stored:
            scopes &= ROLE_SCOPES[current.role]
            if not scopes:  # asked only for what a demotion just took away
                raise OAuthError("invalid_scope", "The requested scope exceeds what is granted.")
            if new_hash is not None:
                await user_store.set_password_hash(conn, user_id=user.id, password_hash=new_hash)
            await sessions.create_session(
                conn,
                sid=sid,
                user_id=user.id,
                scope=" ".join(sorted(scopes)),
                ttl_seconds=svc.settings.refresh_token_ttl,
                jkt=jkt,
            )
            await sessions.add_refresh_token(conn, token_hash=sha256(refresh), sid=sid)
            await audit.record(conn, event="auth.login", actor=user.id, target=sid, ip=ip)
        else:
            current = None
    if current is None:
        svc.metrics.logins.labels("failure").inc()
        security_event("auth.login_failed", reason="disabled", principal=user.id)
        raise OAuthError("invalid_grant", "The username or password is incorrect.")
    access, claims = svc.tokens.issue(
        sub=user.id, client_id=FIRST_PARTY_CLIENT, scopes=scopes, sid=sid, jkt=jkt
    )
    svc.metrics.logins.labels("success").inc()
    return _token_response(access, claims, refresh)


async def refresh_grant(
    svc: Parts,
    form: dict[str, str],
    authorization: str | None,
    ip: str,
    *,
    jkt: str | None = None,
) -> TokenOut:
    """A bound session's refresh token needs a proof by its key (RFC 9449 §5): another
    key, or none, is invalid_grant and leaves the token unspent."""
    token = form.get("refresh_token", "")
    if not token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    client_id, secret, basic = _client_credentials(form, authorization)
    if (client_id or secret or basic) and not (client_id == FIRST_PARTY_CLIENT and not secret):
        # RFC 6749 §6: a client that authenticates must be the one the token was issued
        # to. Every login session belongs to the first-party (public) client.
        client = await _authenticate_client(svc, client_id, secret, basic, ip)
        if client.client_id != FIRST_PARTY_CLIENT:
            await svc.abuse.record_failure(ip, "invalid_refresh")
            raise OAuthError("invalid_grant", "The refresh token was issued to another client.")
    refresh = new_opaque_token()
    try:
        async with svc.db.begin() as conn:
            outcome = await sessions.use_refresh_token(conn, token_hash=sha256(token))
            session = outcome.session
            user = (
                await user_store.get_user(conn, user_id=session.user_id, lock=True)
                if session
                else None
            )
            if outcome.status == "reused" and session is not None:
                await revoke_session(svc, conn, session.sid)
                await audit.record(
                    conn,
                    event="auth.refresh_reuse",
                    actor=session.user_id,
                    target=session.sid,
                    ip=ip,
                )
            elif outcome.status == "ok" and session is not None and user and not user.disabled:
                if session.jkt is not None and session.jkt != jkt:
                    raise _WrongKey  # rolls the spending back: the token stays unspent
                scopes = narrow_scope(form.get("scope"), frozenset(session.scope.split()))
                scopes &= ROLE_SCOPES[user.role]
                await sessions.add_refresh_token(conn, token_hash=sha256(refresh), sid=session.sid)
                access, claims = svc.tokens.issue(
                    sub=user.id,
                    client_id=FIRST_PARTY_CLIENT,
                    scopes=scopes,
                    sid=session.sid,
                    jkt=jkt,
                )
                return _token_response(access, claims, refresh)
    except _WrongKey:
        raise await _wrong_key(svc, ip) from None
    if outcome.status == "reused" and session is not None:
        svc.metrics.refresh_reuse.inc()
        await svc.bus.announce()
        security_event(
            "auth.refresh_reuse",
            level=logging.ERROR,
            reason="refresh_token_reused",
            principal=session.user_id,
            sid=session.sid,
        )
    else:
        await svc.abuse.record_failure(ip, "invalid_refresh")
    raise OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")


class _WrongKey(Exception):
    """A bound refresh token presented without a proof by its key."""


async def _wrong_key(svc: Parts, ip: str) -> OAuthError:
    """Counted outside the refresh's transaction (the abuse policy may write)."""
    svc.dpop.rejected("key_mismatch")  # counted, and logged as auth.dpop_rejected
    await svc.abuse.record_failure(ip, "invalid_refresh")
    return OAuthError("invalid_grant", "The refresh token is bound to another DPoP key.")


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str, str, bool]:
    """(client_id, secret, used_basic) per RFC 6749 §2.3.1."""
    in_body = "client_id" in form or "client_secret" in form
    if authorization and authorization.lower().startswith("basic "):
        if in_body:
            raise OAuthError("invalid_request", "Use one client authentication method.")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            client_id, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise OAuthError(
                "invalid_client", "Client authentication failed.", status=401
            ) from None
        return unquote(client_id), unquote(secret), True
    return form.get("client_id", ""), form.get("client_secret", ""), False


async def _authenticate_client(
    svc: Parts, client_id: str, secret: str, basic: bool, ip: str
) -> ClientRow:
    """The client these credentials authenticate, or invalid_client (RFC 6749 §5.2)."""
    client = await cached_client(svc, client_id) if client_id and len(client_id) <= 64 else None
    expected = client.secret_hash if client else DUMMY_SECRET_HASH
    matches = hmac.compare_digest(expected, sha256(secret))
    # disabled: as its row says (cached up to 5 s), or as every process read it lately
    disabled = client is not None and (
        client.disabled or client.client_id in svc.denylist.disabled_clients
    )
    if client is None or not matches or disabled:
        svc.metrics.logins.labels("failure").inc()
        await svc.abuse.record_failure(ip, "client_auth_failed")
        security_event(
            "auth.login_failed", reason="invalid_client", principal=client_id[:64] or None
        )
        raise OAuthError(
            "invalid_client", "Client authentication failed.", status=401 if basic else 400
        )
    return client


async def client_credentials_grant(
    svc: Parts,
    form: dict[str, str],
    authorization: str | None,
    ip: str,
    *,
    jkt: str | None = None,
) -> TokenOut:
    client_id, secret, basic = _client_credentials(form, authorization)
    client = await _authenticate_client(svc, client_id, secret, basic, ip)
    if client.dpop_bound_access_tokens and jkt is None:
        raise svc.dpop.missing_proof()  # RFC 9449 §5.2 client metadata
    scopes = narrow_scope(form.get("scope"), frozenset(client.scopes.split()))
    access, claims = svc.tokens.issue(
        sub=client.client_id, client_id=client.client_id, scopes=scopes, sid=None, jkt=jkt
    )
    svc.metrics.logins.labels("success").inc()
    return _token_response(access, claims, None)
