"""Verified tokens are remembered, never beyond what a fresh verification would allow:
not past `exp` (plus leeway), not once their key is withdrawn, not beyond a fixed size,
and never instead of the revocation check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from quart import Quart

from service.security import tokens as tokens_module
from service.security.keys import KeyManager, rotate
from service.security.tokens import LEEWAY_SECONDS, TokenRejected, TokenService
from tests.conftest import bearer, login, register


def service(tmp_path: Path, ttl: int = 600) -> TokenService:
    keys = KeyManager(tmp_path / "keys" / "jwks.json").open()
    return TokenService(keys, issuer="https://issuer.test", audience="portcullis", access_ttl=ttl)


def issue(tokens: TokenService, sub: str = "u1") -> str:
    token, _ = tokens.issue(sub=sub, client_id="portcullis", scopes=frozenset({"x"}), sid="s1")
    return token


def test_a_cached_token_still_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = service(tmp_path, ttl=30)
    token = issue(tokens)
    principal = tokens.verify(token)
    assert tokens.verify(token) is principal  # the second time from the cache
    later = principal.exp + LEEWAY_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenRejected) as rejected:
        tokens.verify(token)
    assert rejected.value.reason == "expired"


def test_a_withdrawn_key_takes_its_cached_tokens_with_it(tmp_path: Path) -> None:
    tokens = service(tmp_path)
    token = issue(tokens)
    tokens.verify(token)
    path = tmp_path / "keys" / "jwks.json"
    rotate(path, max_token_ttl=600, activation_seconds=0)
    document = json.loads(path.read_text())
    document["keys"] = document["keys"][1:]  # the operator removes a compromised key
    path.write_text(json.dumps(document))
    assert tokens.keys.maybe_reload()
    with pytest.raises(TokenRejected) as rejected:
        tokens.verify(token)
    assert rejected.value.reason == "unknown_key"


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "MAX_CACHED_TOKENS", 3)
    tokens = service(tmp_path)
    issued = [issue(tokens, sub=f"u{n}") for n in range(5)]
    for token in issued:
        tokens.verify(token)
    assert len(tokens._verified) == 3
    assert tokens.verify(issued[0]).sub == "u0"  # evicted, verified again


async def test_revocation_holds_for_a_cached_token(client: httpx.AsyncClient, app: Quart) -> None:
    await register(client, "cached")
    token = (await login(client, "cached"))["access_token"]
    for _ in range(3):  # verified once, then served from the cache
        assert (await client.get("/v1/users/me", headers=bearer(token))).status_code == 200
    await client.post("/v1/auth/revoke", data={"token": token})
    assert (await client.get("/v1/users/me", headers=bearer(token))).status_code == 401
