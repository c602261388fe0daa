"""Conformance with a DPoP client nobody here wrote: panva's oauth4webapi, over HTTPS
against the real server, used as its documentation shows (no adaptation)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.cli import run_cli
from tests.support.dpop_client import run_client, unavailable
from tests.support.server import run_server


@pytest.fixture(scope="module")
def node_client() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.parametrize("nonce", [False, True], ids=["no-nonce", "nonce"])
def test_oauth4webapi_interoperates(tmp_path: Path, node_client: None, nonce: bool) -> None:
    env = {"PORTCULLIS_DPOP_NONCE": "true" if nonce else "false"}
    with run_server(tmp_path, env=env) as server:
        with httpx.Client(verify=server.ssl_context(), timeout=30) as c:
            r = c.post(
                f"{server.url}/v1/auth/register",
                json={"username": "alice", "password": PASSWORD},
            )
            assert r.status_code == 201
        created = run_cli(server.data_dir, "create-client", "robot", "--scope", "notes:read")
        assert created.returncode == 0, created.stderr
        robot = json.loads(created.stdout)
        seen = run_client(
            server.url,
            server.ca,
            username="alice",
            password=PASSWORD,
            client_id=robot["client_id"],
            client_secret=robot["client_secret"],
        )
        metrics = httpx.get(f"{server.url}/metrics", verify=server.ssl_context()).text
    assert seen["password_token_type"] == "dpop"  # oauth4webapi lower-cases it
    assert seen["refresh_token_type"] == "dpop"
    assert seen["client_token_type"] == "dpop"
    assert seen["me"]["username"] == seen["me_again"]["username"] == "alice"
    assert seen["refreshed_me"]["username"] == "alice"
    assert seen["notes"] == {"items": [], "next_cursor": None}
    assert "dpop:invalid_dpop_proof" in seen["thief"]
    assert "ES256" in seen["dpop_algs"]
    if nonce:
        # the token endpoint (once per login), and the resource server asked for nonces
        assert seen["nonce_retries"] >= 2
        assert 'portcullis_dpop_proofs_total{outcome="nonce_required"}' in metrics
    else:
        assert seen["nonce_retries"] == 0
    accepted = [
        line
        for line in metrics.splitlines()
        if line.startswith('portcullis_dpop_proofs_total{outcome="accepted"}')
    ]
    assert accepted and float(accepted[0].split()[-1]) >= 7
