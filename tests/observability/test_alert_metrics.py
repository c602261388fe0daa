"""The two series the alert rules needed beside the contract's metrics: refresh-token reuse
counted once per reuse, and the in-flight cap published beside the in-flight gauge."""

from __future__ import annotations

import httpx
from quart import Quart

from tests.conftest import client_for, login, register
from tests.support.metrics import value


async def scrape(app: Quart) -> str:
    async with client_for(app, ip="127.0.0.1") as local:
        return (await local.get("/metrics")).text


async def test_refresh_token_reuse_is_counted(app: Quart, client: httpx.AsyncClient) -> None:
    assert value(await scrape(app), "portcullis_refresh_token_reuse_total") == 0
    await register(client, "reuser")
    refresh = (await login(client, "reuser"))["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert (await client.post("/v1/auth/token", data=form)).status_code == 200
    assert value(await scrape(app), "portcullis_refresh_token_reuse_total") == 0
    assert (await client.post("/v1/auth/token", data=form)).status_code == 400  # reused
    assert value(await scrape(app), "portcullis_refresh_token_reuse_total") == 1
    # An unknown token is no reuse.
    unknown = {"grant_type": "refresh_token", "refresh_token": "x" * 43}
    assert (await client.post("/v1/auth/token", data=unknown)).status_code == 400
    assert value(await scrape(app), "portcullis_refresh_token_reuse_total") == 1


async def test_the_in_flight_cap_is_published(app: Quart) -> None:
    from service.services import EXTENSION

    cap = app.extensions[EXTENSION].settings.max_inflight
    text = await scrape(app)
    assert value(text, "portcullis_http_requests_in_flight_limit") == cap
