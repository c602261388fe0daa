"""Automatic blocking: a block consumes the failures that caused it, and so does an
admin's lift; only a full new threshold blocks again, and only a genuine repeat
doubles the block."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from quart import Quart

from service.store import signals as signal_store
from service.store.signals import BlockRow
from tests.conftest import (
    PG_URL,
    REDIS_URL,
    bearer,
    client_for,
    flush_redis,
    make_admin,
    needs_redis,
    svc_of,
    two_instances,
)

ATTACKER = "198.51.100.66"
ADMIN_IP = "203.0.113.99"


async def failures(client: httpx.AsyncClient, count: int) -> list[int]:
    return [(await client.get("/v1/notes")).status_code for _ in range(count)]


async def block_of(app: Quart) -> BlockRow:
    async with svc_of(app).db.read() as conn:
        block = await signal_store.get_block(conn, ip=ATTACKER)
    assert block is not None
    return block


def seconds(block: BlockRow) -> int:
    return round((int(block.until_us) - int(block.created_us)) / 1e6)


async def probe(client: httpx.AsyncClient) -> int:
    """A /v1 request that is no failure: 200, or 403 while the address is blocked."""
    return (await client.post("/v1/auth/revoke", data={"token": "unknown"})).status_code


async def until_served(client: httpx.AsyncClient) -> None:
    """Wait until this instance no longer refuses the attacker (it saw the lift)."""
    deadline = time.monotonic() + 3
    while await probe(client) == 403:
        assert time.monotonic() < deadline, "the lift never reached this instance"
        await asyncio.sleep(0.05)


async def until_refused(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 3
    while await probe(client) != 403:
        assert time.monotonic() < deadline, "the block never reached this instance"
        await asyncio.sleep(0.05)


# One process's memory on SQLite, or Redis shared by instances on PostgreSQL.
BOTH_SETUPS = pytest.mark.parametrize(
    "backend,limiter",
    [
        ("sqlite", "memory"),
        pytest.param(
            "postgresql",
            "redis",
            marks=[
                needs_redis,
                pytest.mark.skipif(not PG_URL, reason="PORTCULLIS_TEST_DATABASE_URL is not set"),
            ],
        ),
    ],
)


async def with_limiter(overrides: dict[str, Any], limiter: str) -> None:
    """Point the settings at a clean Redis when the limiter under test is Redis."""
    if limiter == "redis":
        assert REDIS_URL
        await flush_redis(REDIS_URL)
        overrides["redis_url"] = REDIS_URL


@BOTH_SETUPS
async def test_after_an_admin_lifts_a_block_one_failure_does_not_block_again(
    settings_factory: Any, limiter: str
) -> None:
    overrides: dict[str, Any] = {"block_after": "3/minute", "block_seconds": 60}
    await with_limiter(overrides, limiter)
    async with two_instances(settings_factory(**overrides), ATTACKER) as (a, b, via_a, via_b):
        assert await failures(via_a, 4) == [401] * 4  # the 4th crosses "3/minute"
        assert (await via_a.get("/v1/notes")).status_code == 403
        first = await block_of(a)
        assert first.level == 0 and seconds(first) == 60
        async with client_for(b, ADMIN_IP) as admin_client:
            admin = bearer(await make_admin(b, admin_client))
            r = await admin_client.delete(f"/v1/admin/blocks/{ATTACKER}", headers=admin)
            assert r.status_code == 204
        await until_served(via_a)
        # one more failure, on either instance, must not block again ...
        assert await failures(via_a, 1) == [401]
        assert await probe(via_a) == 200
        assert await probe(via_b) == 200
        # ... only a full new threshold does, and that genuine repeat is doubled
        assert await failures(via_a, 3) == [401] * 3
        assert (await via_a.get("/v1/notes")).status_code == 403
        second = await block_of(a)
        assert second.level == 1 and seconds(second) == 120


async def test_a_block_consumes_its_failures(settings_factory: Any) -> None:
    """When a block ends, the address starts from zero: one failure is not a repeat."""
    settings = settings_factory(block_after="3/minute", block_seconds=1)
    async with two_instances(settings, ATTACKER) as (a, _b, via_a, _via_b):
        assert await failures(via_a, 4) == [401] * 4
        assert (await via_a.get("/v1/notes")).status_code == 403
        assert (await block_of(a)).level == 0
        await asyncio.sleep(1.1)
        assert await failures(via_a, 1) == [401]
        assert await probe(via_a) == 200  # not blocked again
        assert (await block_of(a)).level == 0
        assert await failures(via_a, 3) == [401] * 3
        assert (await via_a.get("/v1/notes")).status_code == 403
        repeat = await block_of(a)
        assert repeat.level == 1 and seconds(repeat) == 2


async def test_other_processes_forget_the_failures_of_a_blocked_address(
    settings_factory: Any,
) -> None:
    """Without Redis each process counts failures itself. A block placed by one process
    also clears the count the others kept, when they apply the block signal."""
    settings = settings_factory(block_after="3/minute", block_seconds=60)
    async with two_instances(settings, ATTACKER) as (a, _b, via_a, via_b):
        assert await failures(via_b, 3) == [401] * 3  # b's count is at the threshold
        assert await failures(via_a, 4) == [401] * 4  # a crosses first and blocks
        await until_refused(via_b)
        async with client_for(a, ADMIN_IP) as admin_client:
            admin = bearer(await make_admin(a, admin_client))
            r = await admin_client.delete(f"/v1/admin/blocks/{ATTACKER}", headers=admin)
            assert r.status_code == 204
        await until_served(via_b)
        assert await failures(via_b, 1) == [401]
        assert await probe(via_b) == 200
        assert (await block_of(a)).level == 0


@BOTH_SETUPS
async def test_failures_in_flight_when_the_block_lands_are_consumed_too(
    settings_factory: Any, limiter: str
) -> None:
    """A burst over two instances. Requests that passed the block check just before the
    block landed end (and fail) after it: they must not fill the fresh count, or the
    end of the block is followed by a doubled one at the next failure."""
    overrides: dict[str, Any] = {"block_after": "3/minute", "block_seconds": 4}
    await with_limiter(overrides, limiter)
    async with two_instances(settings_factory(**overrides), ATTACKER) as (a, _b, via_a, via_b):
        await asyncio.gather(*(c.get("/v1/notes") for c in [via_a, via_b] * 20))
        await until_refused(via_a)
        await until_refused(via_b)
        for _ in range(3):  # three such requests, finishing on instance a
            await svc_of(a).abuse.record_failure(ATTACKER, "http_401")
        first = await block_of(a)
        assert first.level == 0
        await asyncio.sleep(first.until_us / 1e6 - time.time() + 0.1)
        assert await failures(via_a, 1) == [401]
        assert await probe(via_a) == 200 and await probe(via_b) == 200
        assert (await block_of(a)).level == 0
