"""Registration, the three grants, refresh rotation and reuse, revocation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import statistics
import time

import httpx
from quart import Quart

from service.domain import grants, identity
from tests.conftest import PASSWORD, bearer, login, register, svc_of, user_token


async def test_register_returns_user_without_secrets(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/auth/register", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "username", "role", "disabled", "created_at"}
    assert body["role"] == "user" and body["disabled"] is False
    assert PASSWORD not in r.text and "argon2" not in r.text
    assert len(body["id"]) == 36


async def test_register_rejects_bad_input_without_creating(client: httpx.AsyncClient) -> None:
    cases = [
        {"username": "Al", "password": PASSWORD},  # too short / uppercase
        {"username": "alice", "password": "short"},  # too short
        {"username": "alice", "password": "qwertyuiop123"},  # common
        {"username": "alice", "password": "password1234"},  # common
        {"username": "alicealice", "password": "alicealice12"},  # built from username
        {"username": "alice", "password": PASSWORD, "role": "admin"},  # mass assignment
        {"username": "alice", "password": 123456789012345},  # wrong type
        {"username": "alice", "password": "x" * 129},  # too long
        {"username": "alice", "password": "abc\x00defghijklmn"},  # NUL
    ]
    for body in cases:
        r = await client.post("/v1/auth/register", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"], r.text
    # nothing was created: the name is still free
    await register(client, "alice")
    r = await client.post("/v1/auth/register", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 409
    assert r.json()["status"] == 409


async def test_password_grant_issues_rfc9068_token(client: httpx.AsyncClient, app: Quart) -> None:
    user_id = await register(client, "bob")
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == {"notes:read", "notes:write"}
    assert body["refresh_token"]
    principal = svc_of(app).tokens.verify(body["access_token"])
    assert principal.sub == user_id and principal.sid
    header = body["access_token"].split(".")[0]
    assert b'"typ":"at+jwt"' in base64.urlsafe_b64decode(header + "==")
    me = await client.get("/v1/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "bob"
    assert me.headers["cache-control"] == "no-store"


async def test_scope_narrowing_and_widening(client: httpx.AsyncClient) -> None:
    await register(client, "carol")
    narrow = await login(client, "carol", scope="notes:read")
    assert narrow["scope"] == "notes:read"
    r = await client.post("/v1/notes", json={"title": "x"}, headers=bearer(narrow["access_token"]))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "carol",
            "password": PASSWORD,
            "scope": "admin",
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_wrong_password_and_unknown_user_look_the_same(client: httpx.AsyncClient) -> None:
    await register(client, "dave")
    answers = []
    for username, password in (("dave", "wrong-password-123"), ("nobody", "wrong-password-123")):
        r = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 400 and answers[0][1]["error"] == "invalid_grant"


async def test_login_failure_timing_parity(app: Quart, client: httpx.AsyncClient) -> None:
    """An unknown user costs an Argon2 verification too (no user enumeration by time)."""
    await register(client, "erin")
    svc = svc_of(app)

    async def timed(username: str) -> float:
        form = {"grant_type": "password", "username": username, "password": "not-the-password1"}
        started = time.perf_counter()
        with contextlib.suppress(Exception):  # the grant fails either way
            await grants.password_grant(svc, form, "198.51.100.1")
        return time.perf_counter() - started

    known = [await timed("erin") for _ in range(5)]
    unknown = [await timed(f"ghost{i}") for i in range(5)]
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)


async def test_malformed_token_requests(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/auth/token", data={"grant_type": "magic"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = await client.post("/v1/auth/token", data={})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await client.post("/v1/auth/token", json={"grant_type": "password"})
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = await client.post(
        "/v1/auth/token",
        content=b"grant_type=password&grant_type=refresh_token",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_refresh_rotation_and_reuse_revokes_session(
    client: httpx.AsyncClient, app: Quart
) -> None:
    await register(client, "frank")
    first = await login(client, "frank")
    other_session = await login(client, "frank")
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        svc_of(app).tokens.verify(second["access_token"]).sid
        == svc_of(app).tokens.verify(first["access_token"]).sid
    )
    # Reusing the spent token revokes the whole session: every token issued in it.
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for token in (first["access_token"], second["access_token"]):
        r = await client.get("/v1/users/me", headers=bearer(token))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="portcullis", error="invalid_token"'
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert r.status_code == 400
    # Another login session of the same user is untouched.
    r = await client.get("/v1/users/me", headers=bearer(other_session["access_token"]))
    assert r.status_code == 200


async def test_concurrent_refresh_only_one_wins(client: httpx.AsyncClient) -> None:
    await register(client, "gina")
    tokens = await login(client, "gina")
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    results = await asyncio.gather(*(client.post("/v1/auth/token", data=form) for _ in range(5)))
    assert sorted(r.status_code for r in results).count(200) <= 1


async def test_revocation_of_access_and_refresh_tokens(client: httpx.AsyncClient) -> None:
    await register(client, "hank")
    a = await login(client, "hank")
    b = await login(client, "hank")
    r = await client.post("/v1/auth/revoke", data={"token": a["access_token"]})
    assert r.status_code == 200 and r.json() == {}
    assert (await client.get("/v1/users/me", headers=bearer(a["access_token"]))).status_code == 401
    assert (await client.get("/v1/users/me", headers=bearer(b["access_token"]))).status_code == 200
    # Revoking a refresh token ends its session: its access token and refresh token.
    r = await client.post(
        "/v1/auth/revoke", data={"token": b["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert r.status_code == 200
    assert (await client.get("/v1/users/me", headers=bearer(b["access_token"]))).status_code == 401
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": b["refresh_token"]}
    )
    assert r.status_code == 400
    # Unknown tokens are fine (RFC 7009 §2.2); a missing token is not.
    assert (await client.post("/v1/auth/revoke", data={"token": "nonsense"})).status_code == 200
    r = await client.post("/v1/auth/revoke", data={})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_client_credentials_basic_and_body(client: httpx.AsyncClient, app: Quart) -> None:
    created = await identity.create_client(
        svc_of(app), name="robot", scopes=["notes:read"], actor=None, ip=None
    )
    basic = base64.b64encode(f"{created.client_id}:{created.client_secret}".encode()).decode()
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "notes:read" and "refresh_token" not in body
    me = await client.get("/v1/users/me", headers=bearer(body["access_token"]))
    assert me.json() == {"client_id": created.client_id, "name": "robot", "scopes": ["notes:read"]}
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
        },
    )
    assert r.status_code == 200
    # wrong secret, by Basic: 401 invalid_client; by body: 400 invalid_client
    bad = base64.b64encode(f"{created.client_id}:nope".encode()).decode()
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {bad}"},
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": "nope",
            "scope": "notes:read",
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    # a client cannot obtain more than it was given
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "notes:write"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert created.client_secret not in r.text


async def test_token_endpoint_rate_limited_per_ip(settings_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    from service import create_app
    from tests.conftest import client_for

    application = create_app(settings_factory(rate_limit_token="3/minute"))
    async with application.test_app(), client_for(application) as c:
        codes = []
        for i in range(5):
            r = await c.post(
                "/v1/auth/token",
                data={"grant_type": "client_credentials"},
                headers={"X-Forwarded-For": f"192.0.2.{i}"},
            )
            codes.append(r.status_code)
        assert codes[:3] == [400, 400, 400] and codes[3:] == [429, 429]
        assert r.headers["ratelimit"].startswith('"token";r=0;t=')
        assert '"token";q=3;w=60' in r.headers["ratelimit-policy"]


async def test_disabled_user_cannot_log_in_or_use_tokens(
    client: httpx.AsyncClient, app: Quart
) -> None:
    user_id = await register(client, "judy")
    tokens = await login(client, "judy")
    await identity.update_user(
        svc_of(app), user_id=user_id, changes={"disabled": True}, actor="test", ip="127.0.0.1"
    )
    assert (
        await client.get("/v1/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 400
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "judy", "password": PASSWORD}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_metadata_and_jwks(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "https://localhost:8443"
    assert meta["token_endpoint"].endswith("/v1/auth/token")
    assert set(meta["grant_types_supported"]) == {"password", "refresh_token", "client_credentials"}
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert {"kid", "alg", "use"} <= set(key) and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)


async def test_bearer_only_from_authorization_header(client: httpx.AsyncClient) -> None:
    token = await user_token(client, "kate")
    r = await client.get(f"/v1/users/me?access_token={token}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="portcullis"'
    r = await client.get("/v1/users/me", headers={"Cookie": f"access_token={token}"})
    assert r.status_code == 401


async def test_password_rehashed_on_login_when_parameters_change(
    client: httpx.AsyncClient, app: Quart
) -> None:
    from argon2 import PasswordHasher

    from service.store import users as user_store

    svc = svc_of(app)
    old = PasswordHasher(time_cost=3, memory_cost=19456, parallelism=1).hash(PASSWORD)
    async with svc.db.begin() as conn:
        user = await user_store.create_user(
            conn, username="oldhash", password_hash=old, role="user"
        )
    await login(client, "oldhash")
    async with svc.db.read() as conn:
        stored = (await user_store.get_user(conn, user_id=user.id)).password_hash  # type: ignore[union-attr]
    assert stored != old and "t=2" in stored and "m=19456" in stored
    assert stored.startswith("$argon2id$")


async def test_refresh_token_absolute_lifetime(client: httpx.AsyncClient, app: Quart) -> None:
    from sqlalchemy import update

    from service.store.tables import login_sessions

    await register(client, "expiring")
    tokens = await login(client, "expiring")
    async with svc_of(app).db.begin() as conn:
        await conn.execute(update(login_sessions).values(expires_us=1))
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_passwords_are_normalised_the_same_way_at_login(client: httpx.AsyncClient) -> None:
    composed, decomposed = "Caf\u00e9-au-lait-2026", "Cafe\u0301-au-lait-2026"
    await register(client, "unicode", decomposed)
    assert (await login(client, "unicode", composed))["access_token"]
    assert (await login(client, "unicode", decomposed))["access_token"]


async def test_reserved_usernames_are_refused(client: httpx.AsyncClient) -> None:
    for name in ("admin", "root", "portcullis", "administrator", "c_abc123", "c_x"):
        r = await client.post("/v1/auth/register", json={"username": name, "password": PASSWORD})
        assert r.status_code == 422, (name, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "reserved" in r.text
    for name in ("admin1", "rooted", "c-3po", "abc_def"):  # look-alikes are fine
        await register(client, name)


async def test_repetitive_and_sequential_passwords_are_refused(client: httpx.AsyncClient) -> None:
    for password in (
        "abcdabcdabcd",
        " " * 8 + "abcd",
        "1234567890ab",
        "abcabcabcabcXY",
        "zyxwvutsrqpo",
        "aaaaaaaaaaaabbbbbbbbbbbbcccc",
    ):
        r = await client.post("/v1/auth/register", json={"username": "patty", "password": password})
        assert r.status_code == 422, (password, r.text)
        messages = [e["msg"] for e in r.json()["errors"]]
        assert any("repetitive or sequential" in m or "distinct" in m for m in messages), r.text
    await register(client, "patty", "Tr0ub4dor&3-horse-staple")


async def test_refresh_grant_checks_client_credentials(
    client: httpx.AsyncClient, app: Quart
) -> None:
    """RFC 6749 §6: credentials sent with a refresh grant must authenticate and be the
    client the token was issued to (every login session belongs to `portcullis`)."""
    await register(client, "rita")
    tokens = await login(client, "rita")
    other = await identity.create_client(
        svc_of(app), name="other", scopes=["notes:read"], actor=None, ip=None
    )
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    good_basic = base64.b64encode(f"{other.client_id}:{other.client_secret}".encode()).decode()
    bad_basic = base64.b64encode(f"{other.client_id}:wrong".encode()).decode()
    r = await client.post(
        "/v1/auth/token", data=refresh, headers={"Authorization": f"Basic {bad_basic}"}
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await client.post(
        "/v1/auth/token", data=refresh | {"client_id": other.client_id, "client_secret": "wrong"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = await client.post(
        "/v1/auth/token", data=refresh, headers={"Authorization": f"Basic {good_basic}"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await client.post(
        "/v1/auth/token",
        data=refresh | {"client_id": other.client_id, "client_secret": other.client_secret},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await client.post(
        "/v1/auth/token", data=refresh | {"client_id": "portcullis", "client_secret": "x"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    # none of that spent the token; the first-party public client may name itself
    r = await client.post("/v1/auth/token", data=refresh | {"client_id": "portcullis"})
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]},
    )
    assert r.status_code == 200, r.text


async def test_metadata_advertises_only_what_is_implemented(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/oauth-authorization-server")).json()
    # no client_secret_jwt / private_key_jwt: no client-authentication signing algorithms
    signing = {key for key in meta if key.endswith("_signing_alg_values_supported")}
    assert signing == {"dpop_signing_alg_values_supported"}, meta  # DPoP proofs only
    assert set(meta["token_endpoint_auth_methods_supported"]) <= {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert meta["revocation_endpoint_auth_methods_supported"] == ["none"]
