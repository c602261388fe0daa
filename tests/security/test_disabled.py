"""A user or client disabled in the database, by hand and without any signal, is
refused on every route of every instance within a second; enabled again, it works
again (domain/disabled.py)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from quart import Quart
from sqlalchemy import text

from tests.conftest import (
    SettingsFactory,
    bearer,
    client_token,
    needs_pg,
    svc_of,
    two_instances,
    user_token,
)

ROUTES = [
    ("GET", "/v1/notes"),
    ("POST", "/v1/notes"),
    ("GET", "/v1/users/me"),
    ("GET", "/v1/notes/00000000-0000-4000-8000-000000000000"),
]


async def statuses(client: httpx.AsyncClient, token: str) -> set[int]:
    out = set()
    for method, path in ROUTES:
        body = {"title": "t", "body": "", "tags": []} if method == "POST" else None
        r = await client.request(method, path, headers=bearer(token), json=body)
        out.add(r.status_code)
    return out


async def set_disabled(app: Quart, table: str, key: str, value: str, disabled: bool) -> None:
    """What an operator does with psql: no signal, no cache invalidation."""
    async with svc_of(app).db.begin() as conn:
        await conn.execute(
            text(f"UPDATE {table} SET disabled = :d WHERE {key} = :v"),  # noqa: S608 - fixed names
            {"d": disabled, "v": value},
        )


async def refused_within(clients: list[httpx.AsyncClient], token: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    pending = list(clients)
    while pending:
        pending = [c for c in pending if (await statuses(c, token)) != {401}]
        if pending:
            assert time.monotonic() < deadline, "still served after the record was disabled"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=needs_pg)])
async def test_disabled_in_the_database_is_refused_everywhere_within_a_second(
    settings_factory: SettingsFactory,
) -> None:
    async with two_instances(settings_factory()) as (a, _b, via_a, via_b):
        user = await user_token(via_a, "leaver")
        created, robot = await client_token(a, via_a, ["notes:read", "notes:write"])
        assert (await statuses(via_a, user)) <= {200, 201, 404}
        assert (await statuses(via_b, robot)) <= {200, 201, 404}
        me = (await via_a.get("/v1/users/me", headers=bearer(user))).json()["id"]

        await set_disabled(a, "users", "id", me, True)
        started = time.monotonic()
        await refused_within([via_a, via_b], user, 1.0)
        r = await via_b.get("/v1/notes", headers=bearer(user))
        assert r.headers["www-authenticate"].startswith('Bearer realm="portcullis"')
        assert "invalid_token" in r.headers["www-authenticate"]
        assert time.monotonic() - started < 1.5
        assert (await statuses(via_a, robot)) <= {200, 201, 404}  # others unaffected

        await set_disabled(a, "clients", "client_id", created.client_id, True)
        await refused_within([via_a, via_b], robot, 1.0)
        for client in (via_a, via_b):  # and it gets no new token either
            r = await client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": created.client_id,
                    "client_secret": created.client_secret,
                },
            )
            assert r.status_code == 400 and r.json()["error"] == "invalid_client", r.text

        await set_disabled(a, "users", "id", me, False)  # enabled again: served again
        deadline = time.monotonic() + 1.0
        while (await statuses(via_b, user)) == {401}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
