"""The abuse policy end to end: repeated failures block a client, blocks double on repeat,
exempt networks are never blocked, admins list and lift blocks, and instances share one
block (emitted once)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from service import create_app
from service.store import signals
from tests.conftest import (
    PASSWORD,
    bearer,
    client_for,
    make_admin,
    needs_pg,
    two_instances,
)
from tests.support.metrics import value

ATTACKER = "198.51.100.66"


@pytest.fixture
async def blocking_app(settings_factory: Any) -> AsyncIterator[Quart]:
    app = create_app(
        settings_factory(block_after="5/minute", block_seconds=2, block_exempt="192.0.2.0/24")
    )
    async with app.test_app():
        yield app


async def test_repeated_failures_block_the_client(
    capsys: pytest.CaptureFixture[str], blocking_app: Quart
) -> None:
    async with client_for(blocking_app, ip=ATTACKER) as attacker:
        codes = []
        for i in range(9):
            r = await attacker.get(
                "/v1/users/me",
                headers={
                    "Authorization": f"Bearer forged.token.{i:08d}",
                    "X-Forwarded-For": f"10.0.0.{i}",
                },
            )
            codes.append(r.status_code)
        assert codes[:6] == [401] * 6 and codes[6:] == [403, 403, 403]
        r = await attacker.get("/v1/notes")
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        r = await attacker.post("/v1/auth/register", json={"username": "new", "password": PASSWORD})
        assert r.status_code == 403
        assert (await attacker.get("/healthz")).status_code == 200  # probes are not /v1
    async with client_for(blocking_app) as bystander:
        assert (await bystander.get("/v1/notes")).status_code == 401
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    blocked = [r for r in records if r["event"] == "client.blocked"]
    assert len(blocked) == 1
    assert (
        blocked[0]["level"] == "ERROR"
        and blocked[0]["client_ip"] == ATTACKER
        and blocked[0]["reason"]
    )
    async with client_for(blocking_app, ip="127.0.0.1") as local:
        text = (await local.get("/metrics")).text
    assert value(text, "portcullis_client_blocks_total") == 1


async def test_block_expires_and_doubles_on_repeat(blocking_app: Quart) -> None:
    async with client_for(blocking_app, ip=ATTACKER) as attacker:
        for _ in range(7):
            r = await attacker.get("/v1/notes/00000000-0000-4000-8000-000000000000")
        assert r.status_code == 403
        async with blocking_app.extensions["portcullis"].db.begin() as conn:
            first = await signals.get_block(conn, ip=ATTACKER)
        assert first is not None and first.level == 0
        assert 1.5 < (first.until_us - first.created_us) / 1e6 <= 2.0
        await asyncio.sleep(2.1)
        # the block is over; failing on regardless brings a longer one
        assert (await attacker.get("/v1/notes")).status_code == 401
        for _ in range(8):
            r = await attacker.get("/v1/notes")
        assert r.status_code == 403
        async with blocking_app.extensions["portcullis"].db.begin() as conn:
            second = await signals.get_block(conn, ip=ATTACKER)
        assert second is not None and second.level == 1
        assert 3.5 < (second.until_us - second.created_us) / 1e6 <= 4.0


async def test_exempt_networks_are_never_blocked(blocking_app: Quart) -> None:
    async with client_for(blocking_app, ip="192.0.2.10") as monitor:
        codes = [(await monitor.get("/v1/notes")).status_code for _ in range(10)]
    assert set(codes) == {401}


async def test_admin_lists_and_lifts_blocks(blocking_app: Quart) -> None:
    async with client_for(blocking_app, ip=ATTACKER) as attacker:
        for _ in range(7):
            await attacker.get("/v1/notes")
        assert (await attacker.get("/v1/notes")).status_code == 403
        async with client_for(blocking_app, ip="203.0.113.99") as admin_client:
            admin = bearer(await make_admin(blocking_app, admin_client))
            listed = (await admin_client.get("/v1/admin/blocks", headers=admin)).json()
            assert [b["ip"] for b in listed["items"]] == [ATTACKER]
            assert listed["items"][0]["reason"] and listed["items"][0]["until"].endswith("Z")
            r = await admin_client.delete(f"/v1/admin/blocks/{ATTACKER}", headers=admin)
            assert r.status_code == 204
            r = await admin_client.delete(f"/v1/admin/blocks/{ATTACKER}", headers=admin)
            assert r.status_code == 404
            assert (
                await admin_client.delete("/v1/admin/blocks/not-an-ip", headers=admin)
            ).status_code == 404
            assert (await admin_client.get("/v1/admin/blocks", headers=admin)).json()["items"] == []
            events = (await admin_client.get("/v1/admin/audit", headers=admin)).json()["items"]
            assert {"client.blocked", "client.unblocked"} <= {e["event"] for e in events}
        assert (await attacker.get("/v1/notes")).status_code == 401


async def test_failed_logins_count_towards_a_block(blocking_app: Quart) -> None:
    async with client_for(blocking_app, ip=ATTACKER) as attacker:
        codes = []
        for i in range(8):
            r = await attacker.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": f"user{i}",
                    "password": "guess-guess-1",
                },
                headers={"X-Forwarded-For": f"10.1.1.{i}"},
            )
            codes.append(r.status_code)
        assert codes[:6] == [400] * 6 and 403 in codes[6:]


async def test_block_is_shared_by_instances_on_one_database(settings_factory: Any) -> None:
    settings = settings_factory(block_after="3/minute", block_seconds=60)
    async with two_instances(settings, ATTACKER) as (_a, _b, via_a, via_b):
        assert (await via_b.get("/v1/notes")).status_code == 401
        for _ in range(5):
            await via_a.get("/v1/notes")
        assert (await via_a.get("/v1/notes")).status_code == 403
        deadline = time.monotonic() + 2
        while (await via_b.get("/v1/notes")).status_code != 403:
            assert time.monotonic() < deadline, "the other instance never saw the block"
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=needs_pg)])
async def test_one_block_event_when_instances_cross_together(
    capsys: pytest.CaptureFixture[str], settings_factory: Any
) -> None:
    settings = settings_factory(block_after="3/minute", block_seconds=60)
    async with two_instances(settings, ATTACKER) as (_a, _b, via_a, via_b):
        await asyncio.gather(*(c.get("/v1/notes") for c in [via_a, via_b] * 8))
        deadline = time.monotonic() + 2
        for c in (via_a, via_b):  # whichever won, both refuse within the poll interval
            while (await c.get("/v1/notes")).status_code != 403:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len([r for r in records if r["event"] == "client.blocked"]) == 1
    assert not [r for r in records if r["event"] == "client.block_failed"]
