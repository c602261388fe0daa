"""Access tokens of a real OpenID provider (panva's oidc-provider, run locally over
HTTPS) are accepted, mapped and owned; forged, foreign and stale ones are refused; the
provider going down changes nothing for tokens whose keys are cached."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from quart import Quart

from service import create_app
from service.security import issuer_keys
from tests.conftest import bearer, client_for, register, svc_of, user_token
from tests.support.oidc_provider import Provider, oidc_provider, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with oidc_provider(tmp_path_factory.mktemp("idp")) as provider:
        yield provider


def issuers_file(folder: Path, idp: Provider, **overrides: Any) -> Path:
    entry = {
        "issuer": idp.issuer,
        "audience": "portcullis",
        "algorithms": ["ES256"],
        "ca_file": str(idp.ca),
        "roles_claim": "roles",
        "admin_roles": ["portcullis-admin"],
        **overrides,
    }
    path = folder / "issuers.json"
    path.write_text(json.dumps([entry]))
    return path


@pytest.fixture
async def app(settings_factory: Any, idp: Provider, tmp_path: Path) -> AsyncIterator[Quart]:
    application = create_app(settings_factory(trusted_issuers=issuers_file(tmp_path, idp)))
    async with application.test_app():
        await ready(application)
        yield application


async def ready(app: Quart, states: frozenset[str] = frozenset({"ok"})) -> None:
    """Wait for the first key fetch to settle (so no fetch is cut short at shutdown)."""
    external = svc_of(app).external
    assert external is not None
    deadline = time.monotonic() + 10
    while not set(external.states().values()) <= states:
        assert time.monotonic() < deadline, external.states()
        await asyncio.sleep(0.05)


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/users/me", headers=bearer(token))


async def test_provider_tokens_are_accepted_and_mapped(app: Quart, idp: Provider) -> None:
    async with client_for(app) as c:
        robot = await me(c, idp.token("robot"))
        assert robot.status_code == 200, robot.text
        profile = robot.json()
        assert profile["issuer"] == idp.issuer and profile["sub"] == "robot"
        assert profile["role"] == "user" and profile["scopes"] == ["notes:read", "notes:write"]
        assert profile["id"].startswith("ext:")
        operator = (await me(c, idp.token("operator", scope="notes:read admin"))).json()
        assert operator["role"] == "admin" and "admin" in operator["scopes"]


async def test_external_subjects_own_their_notes_and_admin_needs_the_role(
    app: Quart, idp: Provider
) -> None:
    async with client_for(app) as c:
        robot = bearer(idp.token("robot"))
        created = await c.post("/v1/notes", json={"title": "from the idp"}, headers=robot)
        assert created.status_code == 201, created.text
        # a local user named like the provider's subject is someone else
        await register(c, "robot")
        local = bearer(await user_token(c, "robotlocal"))
        assert (await c.get(created.headers["location"], headers=local)).status_code == 404
        mine = (await c.get("/v1/notes", headers=robot)).json()["items"]
        assert [n["title"] for n in mine] == ["from the idp"]
        assert (await c.get("/v1/admin/users", headers=robot)).status_code == 403
        operator = bearer(idp.token("operator", scope="notes:read"))
        assert (await c.get("/v1/admin/users", headers=operator)).status_code == 200


async def test_rotated_provider_keys_are_fetched_once(app: Quart, idp: Provider) -> None:
    async with client_for(app) as c:
        idp.rotate()
        token = idp.token("robot")
        assert (await me(c, token)).status_code == 200  # unknown kid: one refresh, accepted


@pytest.mark.parametrize(
    ("overrides", "token_args"),
    [
        ({}, {"resource": "urn:other"}),  # a token for another audience
        ({"require_typ": "jwt"}, {}),  # a typ the configuration does not accept
        ({"algorithms": ["RS256"]}, {}),  # an algorithm not allowed for this issuer
        ({"issuer": "https://127.0.0.1:1/other"}, {}),  # an issuer nobody configured
    ],
)
async def test_foreign_tokens_are_refused(
    settings_factory: Any,
    idp: Provider,
    tmp_path: Path,
    overrides: dict[str, Any],
    token_args: dict[str, str],
) -> None:
    path = issuers_file(tmp_path, idp, **overrides)
    application = create_app(settings_factory(trusted_issuers=path))
    async with application.test_app(), client_for(application) as c:
        await ready(application, frozenset({"ok", "unavailable"}))
        r = await me(c, idp.token("robot", **token_args))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="portcullis", error="invalid_token"'


async def test_a_token_claiming_the_issuer_with_another_key_is_refused(
    app: Quart, idp: Provider
) -> None:
    genuine = idp.token("robot")
    header = json.loads(__import__("base64").urlsafe_b64decode(genuine.split(".")[0] + "=="))
    claims = json.loads(__import__("base64").urlsafe_b64decode(genuine.split(".")[1] + "=="))
    forged = jwt.encode(header, claims, ECKey.generate_key("P-256"), algorithms=["ES256"])
    async with client_for(app) as c:
        assert (await me(c, genuine)).status_code == 200
        assert (await me(c, forged)).status_code == 401


async def test_provider_outage_keeps_cached_keys_and_bounds_fetches(
    app: Quart, idp: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with client_for(app) as c:
        cached = idp.token("robot")
        assert (await me(c, cached)).status_code == 200
        idp.rotate()  # a key this service has not fetched yet...
        unseen = idp.token("robot")
        idp.stop()  # ...and the provider goes away
        try:
            external = svc_of(app).external
            assert external is not None
            keys = external.get(idp.issuer)
            assert keys is not None
            assert (await me(c, cached)).status_code == 200  # cached keys keep working
            before = keys.fetches
            for _ in range(10):
                assert (await me(c, unseen)).status_code == 401  # never 500
            assert keys.fetches - before <= 1  # at most one fetch per 30 s
            ready_body = (await c.get("/readyz")).json()
            assert ready_body["status"] == "degraded"
            assert ready_body["issuers"] == {idp.issuer: "unavailable"}
        finally:
            idp.start()
        monkeypatch.setattr(issuer_keys, "FORCED_REFRESH_SECONDS", 0.0)
        assert (await me(c, unseen)).status_code == 200  # back: fetched and accepted
