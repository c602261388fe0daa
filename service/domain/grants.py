"""The RFC 6749 grants of the token endpoint: password, refresh_token, client_credentials.

Plain async functions over the service container; they raise the errors of
`service.errors` and never touch HTTP objects.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from typing import Any
from urllib.parse import unquote

from ..errors import OAuthError, TooManyRequests
from ..logging import security_event
from ..models.common import normalise_text
from ..models.users import ROLE_SCOPES, TokenOut
from ..security.ratelimit import Check
from ..security.tokens import new_opaque_token
from ..services import Services
from ..store import audit, sessions
from ..store import users as user_store
from .identity import (
    ACCOUNT_FAILURES,
    DUMMY_SECRET_HASH,
    FIRST_PARTY_CLIENT,
    narrow_scope,
    revoke_session,
    sha256,
)

# Grants ---------------------------------------------------------------------------


def _token_response(access: str, claims: dict[str, Any], refresh: str | None) -> TokenOut:
    return TokenOut(
        access_token=access,
        expires_in=int(claims["exp"]) - int(claims["iat"]),
        scope=str(claims["scope"]),
        refresh_token=refresh,
    )


def _account_checks(username: str) -> list[Check]:
    count, window = ACCOUNT_FAILURES
    return [
        Check(key=f"login:{sha256(username.lower())}", count=count, window=window, name="login")
    ]


async def password_grant(svc: Services, form: dict[str, str], ip: str) -> TokenOut:
    username = form.get("username", "")
    # the same normalisation as at registration (NFC, line ends), so both sides agree
    password = str(normalise_text(form.get("password", "")))
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required.")
    account = _account_checks(username)
    budget = await svc.limiter.check(account, consume=False)
    if not budget.allowed:
        svc.metrics.logins.labels("failure").inc()
        svc.metrics.ratelimit_rejections.labels("login").inc()
        security_event("auth.login_failed", reason="account_throttled")
        raise TooManyRequests(budget.retry_after, policy="login")
    async with svc.db.read() as conn:
        user = await user_store.get_user_by_name(conn, username=username)
    stored = user["password_hash"] if user is not None else None
    ok = await svc.passwords.verify_or_dummy(stored, password)
    if not ok or user is None or user["disabled"]:
        reason = "bad_password" if user is not None else "unknown_user"
        if ok and user is not None:
            reason = "disabled"
        await svc.limiter.check(account)
        await svc.record_failure(ip, "login_failed")
        svc.metrics.logins.labels("failure").inc()
        security_event("auth.login_failed", reason=reason, principal=user["id"] if user else None)
        async with svc.db.begin() as conn:
            await audit.record(
                conn,
                event="auth.login_failed",
                actor=user["id"] if user else None,
                target=None,
                ip=ip,
            )
        raise OAuthError("invalid_grant", "The username or password is incorrect.")
    scopes = narrow_scope(form.get("scope"), ROLE_SCOPES[user["role"]])
    if stored is not None and svc.passwords.needs_rehash(stored):
        new_hash = await svc.passwords.hash(password)
        async with svc.db.begin() as conn:
            await user_store.set_password_hash(conn, user_id=user["id"], password_hash=new_hash)
    sid = str(uuid.uuid4())
    refresh = new_opaque_token()
    async with svc.db.begin() as conn:
        await sessions.create_session(
            conn,
            sid=sid,
            user_id=user["id"],
            scope=" ".join(sorted(scopes)),
            ttl_seconds=svc.settings.refresh_token_ttl,
        )
        await sessions.add_refresh_token(conn, token_hash=sha256(refresh), sid=sid)
        await audit.record(conn, event="auth.login", actor=user["id"], target=sid, ip=ip)
    access, claims = svc.tokens.issue(
        sub=user["id"], client_id=FIRST_PARTY_CLIENT, scopes=scopes, sid=sid
    )
    svc.metrics.logins.labels("success").inc()
    return _token_response(access, claims, refresh)


async def refresh_grant(svc: Services, form: dict[str, str], ip: str) -> TokenOut:
    token = form.get("refresh_token", "")
    if not token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    refresh = new_opaque_token()
    async with svc.db.begin() as conn:
        outcome = await sessions.use_refresh_token(conn, token_hash=sha256(token))
        session = outcome.session
        user = await user_store.get_user(conn, user_id=session["user_id"]) if session else None
        if outcome.status == "reused" and session is not None:
            await revoke_session(svc, conn, session["sid"])
            await audit.record(
                conn,
                event="auth.refresh_reuse",
                actor=session["user_id"],
                target=session["sid"],
                ip=ip,
            )
        elif outcome.status == "ok" and session is not None and user and not user["disabled"]:
            scopes = narrow_scope(form.get("scope"), frozenset(session["scope"].split()))
            scopes &= ROLE_SCOPES[user["role"]]
            await sessions.add_refresh_token(conn, token_hash=sha256(refresh), sid=session["sid"])
            access, claims = svc.tokens.issue(
                sub=user["id"], client_id=FIRST_PARTY_CLIENT, scopes=scopes, sid=session["sid"]
            )
            return _token_response(access, claims, refresh)
    if outcome.status == "reused" and session is not None:
        await svc.announce()
        security_event(
            "auth.refresh_reuse",
            level=logging.ERROR,
            reason="refresh_token_reused",
            principal=session["user_id"],
            sid=session["sid"],
        )
    else:
        await svc.record_failure(ip, "invalid_refresh")
    raise OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")


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


async def client_credentials_grant(
    svc: Services, form: dict[str, str], authorization: str | None, ip: str
) -> TokenOut:
    client_id, secret, basic = _client_credentials(form, authorization)
    client = None
    if client_id and len(client_id) <= 64:
        async with svc.db.read() as conn:
            client = await user_store.get_client(conn, client_id=client_id)
    expected = client["secret_hash"] if client else DUMMY_SECRET_HASH
    matches = hmac.compare_digest(expected, sha256(secret))
    if client is None or not matches or client["disabled"]:
        svc.metrics.logins.labels("failure").inc()
        await svc.record_failure(ip, "client_auth_failed")
        security_event(
            "auth.login_failed", reason="invalid_client", principal=client_id[:64] or None
        )
        raise OAuthError(
            "invalid_client", "Client authentication failed.", status=401 if basic else 400
        )
    scopes = narrow_scope(form.get("scope"), frozenset(client["scopes"].split()))
    access, claims = svc.tokens.issue(
        sub=client["client_id"], client_id=client["client_id"], scopes=scopes, sid=None
    )
    svc.metrics.logins.labels("success").inc()
    return _token_response(access, claims, None)
