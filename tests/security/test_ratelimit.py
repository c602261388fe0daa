"""GCRA limits: exact under concurrent bursts, in memory and in Redis, bounded memory,
header formats, keys that clients cannot choose, and Redis outage/recovery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service import create_app
from service.security.ratelimit import US, Check, MemoryEngine, RedisEngine
from tests.conftest import REDIS_URL, bearer, client_for, flush_redis, needs_redis, user_token
from tests.support.tcpproxy import proxy_for


def checks(key: str = "k", count: int = 3, window: int = 60) -> list[Check]:
    return [Check(key=key, count=count, window=window, name="default")]


def test_gcra_allows_exactly_the_quota_then_paces() -> None:
    engine = MemoryEngine()
    now = 1_000 * US
    results = [engine.check(checks(), now=now).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]
    denied = engine.check(checks(), now=now)
    assert denied.retry_after == 20  # one emission interval of 60 s / 3
    assert engine.check(checks(), now=now + 19 * US).allowed is False
    assert engine.check(checks(), now=now + 20 * US).allowed is True
    assert engine.check(checks(), now=now + 20 * US).allowed is False


def test_several_limits_are_checked_and_counted_together() -> None:
    """`100/hour;10/minute`-style: a long quota plus a short pace; a request refused by
    one limit consumes nothing from the other."""
    engine = MemoryEngine()
    both = [
        Check(key="h", count=4, window=3600, name="default"),
        Check(key="m", count=2, window=60, name="default-60"),
    ]
    t = 0
    assert [engine.check(both, now=t).allowed for _ in range(3)] == [True, True, False]
    decision = engine.check(both, now=t)
    assert decision.rejected_by == "default-60" and decision.retry_after == 30
    t += 30 * US
    assert engine.check(both, now=t).allowed is True
    t += 30 * US
    assert engine.check(both, now=t).allowed is True
    t += 60 * US
    refused = engine.check(both, now=t)
    assert refused.allowed is False and refused.rejected_by == "default"  # hourly quota spent


def test_memory_store_is_bounded_with_100k_clients() -> None:
    engine = MemoryEngine(max_keys=50_000)
    now = 10 * US
    for i in range(100_000):
        engine.check(checks(key=f"ip:{i}", count=100), now=now)
    assert len(engine) <= 50_000
    # expired entries are dropped first: after the window nothing needs to be kept
    engine.check(checks(key="late", count=100), now=now + 3600 * US)
    assert len(engine) == 1


@pytest.fixture
async def limited_app(settings_factory: Any) -> AsyncIterator[Any]:
    app = create_app(settings_factory(rate_limit_default="10/minute"))
    async with app.test_app():
        yield app


async def test_concurrent_burst_never_exceeds_quota(limited_app: Any) -> None:
    async with client_for(limited_app) as c:
        token = bearer(await user_token(c, "burst"))  # register + login use 2 of the IP budget
        results = await asyncio.gather(*(c.get("/v1/users/me", headers=token) for _ in range(50)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 10 and codes.count(429) == 40


async def test_headers_and_429_shape(limited_app: Any) -> None:
    async with client_for(limited_app) as c:
        token = bearer(await user_token(c, "headers"))
        r = await c.get("/v1/users/me", headers=token)
        assert r.headers["ratelimit-policy"] == '"default";q=10;w=60'
        assert r.headers["ratelimit"] == '"default";r=9;t=6'
        r = await c.post("/v1/auth/token", data={"grant_type": "password"})
        policies = r.headers["ratelimit-policy"]
        assert '"token";q=1000;w=60' in policies and '"default";q=10;w=60' in policies
        for _ in range(10):
            r = await c.get("/v1/users/me", headers=token)
        assert r.status_code == 429
        assert r.headers.get_list("retry-after") == [r.headers["retry-after"]]
        assert 1 <= int(r.headers["retry-after"]) <= 6
        assert r.headers["ratelimit"].startswith('"default";r=0;t=')
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 429


async def test_budget_is_per_principal_and_spoofing_changes_nothing(limited_app: Any) -> None:
    async with client_for(limited_app) as c:
        a = bearer(await user_token(c, "usera"))
        b = bearer(await user_token(c, "userb"))
        for _ in range(10):
            assert (await c.get("/v1/users/me", headers=a)).status_code == 200
        assert (await c.get("/v1/users/me", headers=a)).status_code == 429
        assert (await c.get("/v1/users/me", headers=b)).status_code == 200
    # Anonymous requests are keyed by the socket address; forwarding headers from an
    # untrusted peer are ignored, so rotating them does not buy a new budget.
    async with client_for(limited_app, ip="198.51.100.77") as anon:
        codes = []
        for i in range(12):
            r = await anon.get(
                "/v1/notes",
                headers={
                    "X-Forwarded-For": f"10.9.8.{i}",
                    "Forwarded": f"for=10.7.6.{i}",
                    "X-Real-IP": f"10.5.4.{i}",
                },
            )
            codes.append(r.status_code)
        assert codes.count(401) == 10 and codes[-2:] == [429, 429]


@needs_redis
async def test_redis_engine_matches_memory_semantics() -> None:
    import redis.asyncio as aioredis

    assert REDIS_URL
    await flush_redis(REDIS_URL)
    client = aioredis.from_url(REDIS_URL)
    engine = RedisEngine(client)
    results = [(await engine.check(checks(key="same"))).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]
    ttl = await client.pttl("portcullis:{rl}:same")
    assert 0 < ttl <= 60_000 + 1  # keys expire with their window
    peek = await engine.check(checks(key="fresh"), consume=False)
    assert peek.allowed and await client.exists("portcullis:{rl}:fresh") == 0
    await client.aclose()


@needs_redis
async def test_two_instances_sharing_redis_see_one_budget(settings_factory: Any) -> None:
    assert REDIS_URL
    await flush_redis(REDIS_URL)
    apps = [
        create_app(settings_factory(rate_limit_default="10/minute", redis_url=REDIS_URL))
        for _ in range(2)
    ]
    async with apps[0].test_app(), apps[1].test_app():
        async with client_for(apps[0]) as c0, client_for(apps[1]) as c1:
            token = bearer(await user_token(c0, "shared"))
            results = await asyncio.gather(
                *(c.get("/v1/users/me", headers=token) for c in [c0, c1] * 25)
            )
    codes = [r.status_code for r in results]
    assert codes.count(200) == 10 and codes.count(429) == 40
    await flush_redis(REDIS_URL)


@needs_redis
async def test_redis_outage_fails_open_and_recovers(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis.asyncio as aioredis

    assert REDIS_URL
    await flush_redis(REDIS_URL)
    proxy, url = await proxy_for(REDIS_URL)
    app = create_app(settings_factory(rate_limit_default="100/minute", redis_url=url))
    direct = aioredis.from_url(REDIS_URL)
    try:
        async with app.test_app(), client_for(app) as c:
            token = bearer(await user_token(c, "outage"))
            assert (await c.get("/v1/users/me", headers=token)).status_code == 200
            assert await direct.keys("portcullis:{rl}:default:*")
            proxy.cut()
            await direct.delete(*await direct.keys("portcullis:{rl}:*"))
            for _ in range(3):  # served from the per-process limiter meanwhile
                assert (await c.get("/v1/users/me", headers=token)).status_code == 200
            # degraded, not unavailable: the replica still serves, so it stays in rotation
            ready = await c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "degraded",
                "checks": {"database": "ok", "redis": "unavailable"},
            }
            proxy.restore()
            await asyncio.sleep(1.2)  # the limiter retries Redis after its back-off
            assert (await c.get("/v1/users/me", headers=token)).status_code == 200
            assert await direct.keys("portcullis:{rl}:default:*")
            assert (await c.get("/readyz")).json()["status"] == "ready"
    finally:
        await proxy.stop()
        await direct.aclose()
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    errors = [r for r in records if r["event"] == "ratelimit.redis_unavailable"]
    assert len(errors) == 1 and errors[0]["level"] == "ERROR"
    assert any(r["event"] == "ratelimit.redis_recovered" for r in records)


@needs_redis
async def test_broken_pooled_connections_are_retried_not_an_outage(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a Redis restart every pooled connection is dead: each is retried once on a
    fresh connection, so limits stay exact and no outage is declared or logged."""
    import redis.asyncio as aioredis

    assert REDIS_URL
    await flush_redis(REDIS_URL)
    app = create_app(settings_factory(rate_limit_default="5/minute", redis_url=REDIS_URL))
    admin = aioredis.from_url(REDIS_URL)
    try:
        async with app.test_app(), client_for(app) as c:
            token = bearer(await user_token(c, "restarts"))
            await asyncio.gather(*(c.get("/v1/users/me", headers=token) for _ in range(2)))
            mine = await admin.client_id()
            db = str(admin.connection_pool.connection_kwargs.get("db", 0))
            for entry in await admin.client_list():  # what a Redis restart does to a pool
                if int(entry["id"]) != mine and entry["db"] == db:
                    await admin.client_kill_filter(_id=entry["id"])
            codes = [(await c.get("/v1/users/me", headers=token)).status_code for _ in range(5)]
            assert codes == [200, 200, 200, 429, 429]  # the budget held in Redis, exactly
            assert (await c.get("/readyz")).json()["status"] == "ready"
    finally:
        await admin.aclose()
        await flush_redis(REDIS_URL)
    events = [json.loads(x)["event"] for x in capsys.readouterr().out.splitlines() if x[:1] == "{"]
    assert "ratelimit.redis_unavailable" not in events
    assert "dependency.down" not in events
