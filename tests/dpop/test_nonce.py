"""Server nonces (RFC 9449 §8, §9) with PORTCULLIS_DPOP_NONCE=true."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from quart import Quart

from service import create_app
from service.config import Settings
from service.security.dpop_nonce import SLOT_SECONDS, NonceKeys
from service.security.keys import KeyManager, rotate
from tests.conftest import PASSWORD, SettingsFactory, register, svc_of, two_instances

from .proofs import ISSUER, ME_URL, TOKEN_URL, Holder

FORM = {"grant_type": "password", "username": "alice", "password": PASSWORD}


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(issuer=ISSUER, dpop_nonce=True)


async def test_the_nonce_dance_at_the_token_endpoint_and_a_resource(
    app: Quart, client: httpx.AsyncClient, holder: Holder
) -> None:
    await register(client, "alice")
    r = await client.post(
        "/v1/auth/token", data=FORM, headers={"DPoP": holder.proof("POST", TOKEN_URL)}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "use_dpop_nonce"
    nonce = r.headers["DPoP-Nonce"]
    r = await client.post(
        "/v1/auth/token", data=FORM, headers={"DPoP": holder.proof("POST", TOKEN_URL, nonce=nonce)}
    )
    assert r.status_code == 200, r.text
    assert r.headers["DPoP-Nonce"]  # on every answer to a DPoP request
    access = r.json()["access_token"]

    auth = {"Authorization": f"DPoP {access}"}
    r = await client.get(
        "/v1/users/me", headers=auth | {"DPoP": holder.proof("GET", ME_URL, token=access)}
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("DPoP ")
    assert 'error="use_dpop_nonce"' in r.headers["WWW-Authenticate"]
    nonce = r.headers["DPoP-Nonce"]
    good = holder.proof("GET", ME_URL, token=access, nonce=nonce)
    r = await client.get("/v1/users/me", headers=auth | {"DPoP": good})
    assert r.status_code == 200
    assert r.headers["DPoP-Nonce"]
    metrics = svc_of(app).metrics.dpop_proofs
    assert metrics.labels("nonce_required")._value.get() == 2


async def test_a_forged_or_foreign_nonce_is_refused(
    client: httpx.AsyncClient, holder: Holder, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    await register(client, "alice")
    # a nonce of another deployment (another signing key file)
    other = create_app(
        settings_factory(issuer=ISSUER, dpop_nonce=True, data_dir=tmp_path / "other")
    )
    async with other.test_app():
        foreign = svc_of(other).dpop.nonce()
    for nonce in (foreign, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x" * 200):
        r = await client.post(
            "/v1/auth/token",
            data=FORM,
            headers={"DPoP": holder.proof("POST", TOKEN_URL, nonce=nonce)},
        )
        assert r.status_code == 400
        assert r.json()["error"] == "use_dpop_nonce"


async def test_nonces_live_one_or_two_slots_and_survive_a_key_rotation(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyManager(settings.keys_file)
    keys.open()
    nonces = NonceKeys(keys)
    start = 1_000 * SLOT_SECONDS
    nonce = nonces.issue(start)
    assert nonces.valid(nonce, start)
    assert nonces.valid(nonce, start + SLOT_SECONDS + 1)  # the previous slot
    assert not nonces.valid(nonce, start + 2 * SLOT_SECONDS)  # too old
    assert not nonces.valid(nonce, start - SLOT_SECONDS)  # from the future
    rotate(settings.keys_file, max_token_ttl=600, activation_seconds=0)
    assert keys.maybe_reload()
    assert nonces.issue(start) != nonce  # signed under the new key now...
    assert nonces.valid(nonce, start)  # ...and the old key's nonce still counts


async def test_replicas_accept_each_others_nonces(settings: Settings, holder: Holder) -> None:
    async with two_instances(settings) as (_a, _b, ca, cb):
        await register(ca, "alice")
        r = await ca.post(
            "/v1/auth/token", data=FORM, headers={"DPoP": holder.proof("POST", TOKEN_URL)}
        )
        nonce = r.headers["DPoP-Nonce"]
        r = await cb.post(
            "/v1/auth/token",
            data=FORM,
            headers={"DPoP": holder.proof("POST", TOKEN_URL, nonce=nonce)},
        )
        assert r.status_code == 200, r.text


async def test_no_nonce_header_without_dpop(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert "DPoP-Nonce" not in r.headers
