"""The documentation routes over HTTP: /docs with its own CSP and self-hosted assets, and
an OpenAPI document that names every route."""

from __future__ import annotations

import httpx
import pytest
from quart import Quart

from tests.conftest import bearer, user_token


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "jsonuser"))


async def test_docs_page_has_its_own_csp_and_self_hosted_assets(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "cdn" not in r.text and "<script>" not in r.text
    for asset in (
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
        "/docs/init.js",
    ):
        assert (await client.get(asset)).status_code == 200
    assert (await client.get("/docs/static/../../etc/passwd")).status_code == 404


async def test_openapi_documents_every_route(app: Quart, client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            templ = rule.rule.replace("<", "{").replace(">", "}")
            assert templ in paths, templ
    create = paths["/v1/notes"]["post"]
    assert "application/json" in create["requestBody"]["content"]
    for form_route in ("/v1/auth/token", "/v1/auth/revoke"):
        body = paths[form_route]["post"]["requestBody"]["content"]
        assert "application/x-www-form-urlencoded" in body
