"""The request context: security headers on every answer (HSTS only over TLS) and the
request id."""

from __future__ import annotations

import json

import httpx
import pytest
from quart import Quart

from tests.conftest import bearer, client_for, user_token

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "jsonuser"))


async def test_security_headers_everywhere(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get("/healthz"),
        await client.get("/nope"),
        await client.post("/v1/notes", json={}),
        await client.get("/openapi.json"),
    ):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (r.url, name)
        assert "server" not in r.headers
    r = await client.get("/v1/users/me")
    assert r.headers["cache-control"] == "no-store"


async def test_no_hsts_on_plain_http_and_redirect(
    app: Quart, capsys: pytest.CaptureFixture[str]
) -> None:
    async with client_for(app, scheme="http") as c:
        r = await c.get("/v1/notes?limit=5&x=%2F")
        assert r.status_code == 308
        assert r.headers["location"] == "https://localhost:8443/v1/notes?limit=5&x=%2F"
        assert "strict-transport-security" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff" and r.content == b""
        r = await c.post("/v1/auth/token", headers={"Host": "evil.example"})
        assert r.headers["location"] == "https://localhost:8443/v1/auth/token"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    redirects = [x for x in lines if x["event"] == "http.request" and x["status"] == 308]
    assert [x["route"] for x in redirects] == ["<redirect>", "<redirect>"]


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("abc-123_x.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("bad id", False),
        ("x\r\nSet-Cookie: a=b", False),
        ("", False),
    ],
)
async def test_request_id(client: httpx.AsyncClient, given: str, echoed: bool) -> None:
    headers = {"X-Request-ID": given} if "\r" not in given else {}
    r = await client.get("/healthz", headers=headers)
    rid = r.headers["x-request-id"]
    if echoed:
        assert rid == given
    else:
        assert rid != given and len(rid) == 32
    assert len(r.headers.get_list("x-request-id")) == 1
