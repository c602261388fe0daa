"""No-store on every API answer and on every answer to a request carrying credentials."""

from __future__ import annotations

import httpx


async def test_credentials_anywhere_mean_no_store(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"Authorization": "Bearer x"})
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    r = await client.get("/healthz", headers={"authorization": "Basic eDp5"})
    assert r.headers["cache-control"] == "no-store"


async def test_api_answers_are_no_store_and_probes_without_credentials_are_not(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/users/me")
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    r = await client.get("/healthz")
    assert r.headers.get("cache-control") != "no-store" and "pragma" not in r.headers
