"""CORS: exact allow-list, never `null` or look-alikes, minimal preflight grants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from service import create_app
from tests.conftest import client_for

ALLOWED = "https://app.example.com"


@pytest.fixture
async def cors_client(settings_factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_factory(cors_origins=f"{ALLOWED},http://localhost:3000"))
    async with app.test_app(), client_for(app) as c:
        yield c


async def test_allowed_origin(cors_client: httpx.AsyncClient) -> None:
    r = await cors_client.get("/healthz", headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in r.headers["vary"]
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed == {
        "etag",
        "location",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-request-id",
    }
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "http://app.example.com",  # other scheme
        "https://app.example.com.evil.com",  # look-alike suffix
        "https://evilapp.example.com",
        "https://app.example.co",
        "https://APP.EXAMPLE.COM.evil",
        "https://app.example.com:8443",  # other port
        "https://app.example.com/",
        "",
    ],
)
async def test_other_origins_get_no_cors_headers(
    cors_client: httpx.AsyncClient, origin: str
) -> None:
    r = await cors_client.get("/healthz", headers={"Origin": origin})
    assert "access-control-allow-origin" not in r.headers
    r = await cors_client.options(
        "/v1/notes", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-methods" not in r.headers


async def test_preflight_grants_only_what_the_api_uses(cors_client: httpx.AsyncClient) -> None:
    r = await cors_client.options(
        "/v1/notes",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": (
                "authorization, content-type, idempotency-key, x-evil"
            ),
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PATCH", "DELETE"}
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert allowed == {"authorization", "content-type", "idempotency-key"}
    assert 0 < int(r.headers["access-control-max-age"]) <= 86400
    r = await cors_client.options(
        "/v1/notes", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "PUT"}
    )
    assert "access-control-allow-methods" not in r.headers


async def test_no_origins_configured_means_no_cors_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"Origin": ALLOWED})
    assert not [h for h in r.headers if h.startswith("access-control-")]
    r = await client.options(
        "/v1/notes", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    assert not [h for h in r.headers if h.startswith("access-control-")]


async def test_credentials_only_with_exact_origins(settings_factory: Any) -> None:
    app = create_app(settings_factory(cors_origins=ALLOWED, cors_credentials=True))
    async with app.test_app(), client_for(app) as c:
        r = await c.get("/healthz", headers={"Origin": ALLOWED})
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert r.headers["access-control-allow-credentials"] == "true"
    with pytest.raises(ValidationError):
        settings_factory(cors_origins="*", cors_credentials=True)
