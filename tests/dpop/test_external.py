"""An external issuer's DPoP-bound tokens (`cnf.jkt`) get the same proof rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service import create_app
from tests.conftest import SettingsFactory, client_for
from tests.security.test_external_idp import ready
from tests.security.test_issuers import claims_for, ec_key, mint, public
from tests.support.jwks_server import JsonServer, json_server

from .proofs import ISSUER, ME_URL, Holder


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonServer]:
    with json_server(tmp_path_factory.mktemp("idp")) as server:
        yield server


async def test_external_bound_tokens_need_a_proof_by_their_key(
    settings_factory: SettingsFactory, idp: JsonServer, tmp_path: Path, holder: Holder
) -> None:
    issuer = f"{idp.base}/realms/dpop"
    key = ec_key("dpop-k1")
    idp.serve("/realms/dpop/certs", public(key))
    entry = {
        "issuer": issuer,
        "audience": "portcullis",
        "algorithms": ["ES256"],
        "jwks_uri": f"{issuer}/certs",
        "ca_file": str(idp.ca),
    }
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([entry]))
    app = create_app(settings_factory(issuer=ISSUER, trusted_issuers=path))
    bound = mint(key, claims_for(issuer, cnf={"jkt": holder.jkt}))
    async with app.test_app(), client_for(app) as client:
        await ready(app)

        async def me(headers: dict[str, str]) -> httpx.Response:
            return await client.get("/v1/users/me", headers=headers)

        ok = await me(
            {"Authorization": f"DPoP {bound}", "DPoP": holder.proof("GET", ME_URL, token=bound)}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["sub"] == "alice"
        assert (await me({"Authorization": f"Bearer {bound}"})).status_code == 401
        thief = Holder()
        r = await me(
            {"Authorization": f"DPoP {bound}", "DPoP": thief.proof("GET", ME_URL, token=bound)}
        )
        assert r.status_code == 401
        assert 'error="invalid_dpop_proof"' in r.headers["WWW-Authenticate"]
        # a confirmation this service cannot check refuses the token
        odd = mint(key, claims_for(issuer, jti="j2", cnf={"x5t#S256": "abc"}))
        assert (await me({"Authorization": f"Bearer {odd}"})).status_code == 401
