"""DPoP tests: the service's public URL is not the test client's host, so every proof's
`htu` is checked against PORTCULLIS_ISSUER and never against the Host header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.config import Settings
from tests.conftest import SettingsFactory, login, register

from .proofs import ISSUER, TOKEN_URL, Holder


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(issuer=ISSUER)


@pytest.fixture
def holder() -> Holder:
    return Holder()


async def dpop_login(
    client: httpx.AsyncClient, holder: Holder, username: str = "alice", **extra: str
) -> dict[str, Any]:
    """Register `username` and log in with a proof by `holder`."""
    await register(client, username)
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": _password(), **extra},
        headers={"DPoP": holder.proof("POST", TOKEN_URL)},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _password() -> str:
    from tests.conftest import PASSWORD

    return PASSWORD


__all__ = ["dpop_login", "login"]
