"""RFC 7009 revocation: the hint only orders the search, and revoking twice writes nothing."""

from __future__ import annotations

import httpx
from quart import Quart
from sqlalchemy import func, select

from service import create_app
from service.config import Settings
from service.store.tables import audit, signals
from tests.conftest import bearer, client_for, login, register, svc_of


async def rows(app: Quart) -> tuple[int, int]:
    """(signals rows, audit rows)."""
    async with svc_of(app).db.read() as conn:
        signal_rows = await conn.scalar(select(func.count()).select_from(signals))
    async with svc_of(app).db.read() as conn:
        audit_rows = await conn.scalar(select(func.count()).select_from(audit))
    return int(signal_rows or 0), int(audit_rows or 0)


async def revoke(client: httpx.AsyncClient, token: str, hint: str | None = None) -> None:
    data = {"token": token} | ({"token_type_hint": hint} if hint else {})
    r = await client.post("/v1/auth/revoke", data=data)
    assert r.status_code == 200 and r.json() == {}, r.text


async def test_access_token_revoked_despite_refresh_hint(client: httpx.AsyncClient) -> None:
    await register(client, "hinter")
    tokens = await login(client, "hinter")
    await revoke(client, tokens["access_token"], "refresh_token")
    r = await client.get("/v1/users/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401


async def test_refresh_token_revoked_despite_access_hint(client: httpx.AsyncClient) -> None:
    await register(client, "hinter2")
    tokens = await login(client, "hinter2")
    await revoke(client, tokens["refresh_token"], "access_token")
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_revoking_again_writes_nothing(client: httpx.AsyncClient, app: Quart) -> None:
    await register(client, "twice")
    a = await login(client, "twice")
    b = await login(client, "twice")
    before = await rows(app)
    await revoke(client, a["access_token"])
    once = await rows(app)
    assert once == (before[0] + 1, before[1] + 1)
    for hint in (None, "access_token", "refresh_token"):
        await revoke(client, a["access_token"], hint)
    assert await rows(app) == once
    await revoke(client, b["refresh_token"], "refresh_token")
    twice = await rows(app)
    assert twice == (once[0] + 1, once[1] + 1)
    for hint in (None, "access_token", "refresh_token"):
        await revoke(client, b["refresh_token"], hint)
        # the access token of a revoked session is dead already: nothing to write
        await revoke(client, b["access_token"], hint)
    assert await rows(app) == twice
    assert (await client.get("/v1/users/me", headers=bearer(b["access_token"]))).status_code == 401


async def test_revoking_again_on_another_instance_writes_nothing(settings: Settings) -> None:
    """The second instance has not replayed the first one's signal: the database
    decides, not the instance's memory."""
    a, b = create_app(settings), create_app(settings)
    svc_of(b).bus.poll_seconds = 3600.0  # b replays signals only at start-up
    async with a.test_app(), b.test_app(), client_for(a) as ca, client_for(b) as cb:
        await register(ca, "replica")
        tokens = await login(ca, "replica")
        await revoke(ca, tokens["access_token"])
        once = await rows(a)
        assert not svc_of(b).denylist.is_revoked(svc_of(b).tokens.verify(tokens["access_token"]))
        await revoke(cb, tokens["access_token"])
        await revoke(cb, tokens["access_token"], "refresh_token")
        assert await rows(a) == once
