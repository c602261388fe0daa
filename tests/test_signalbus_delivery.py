"""The signal bus between instances: a revocation reaches the others by their poll and at
once by the Redis announcement, and holds while Redis is down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conftest import (
    REDIS_URL,
    bearer,
    needs_redis,
    svc_of,
    two_instances,
    user_token,
)
from tests.support.tcpproxy import proxy_for


async def test_revocation_reaches_other_instances_within_a_second(settings_factory: Any) -> None:
    settings = settings_factory()
    async with two_instances(settings) as (_a, _b, ca, cb):
        token = await user_token(ca, "twoinstances")
        assert (await cb.get("/v1/users/me", headers=bearer(token))).status_code == 200
        assert (await ca.post("/v1/auth/revoke", data={"token": token})).status_code == 200
        started = time.monotonic()
        while (await cb.get("/v1/users/me", headers=bearer(token))).status_code != 401:
            await asyncio.sleep(0.05)
        assert time.monotonic() - started < 1.0


@needs_redis
async def test_redis_announces_revocations_to_other_instances(settings_factory: Any) -> None:
    """With Redis, other processes hear of a revocation at once (pub/sub), not at their
    next database poll (made 30 s here, so only the announcement can explain it)."""
    assert REDIS_URL
    settings = settings_factory(redis_url=REDIS_URL)
    async with two_instances(settings) as (_a, b, ca, cb):
        await asyncio.sleep(0.3)  # both subscribed
        token = await user_token(ca, "pubsub")
        assert (await cb.get("/v1/users/me", headers=bearer(token))).status_code == 200
        svc_of(b).bus.poll_seconds = 30
        await asyncio.sleep(0.6)  # b is now in a 30 s wait
        assert (await ca.post("/v1/auth/revoke", data={"token": token})).status_code == 200
        started = time.monotonic()
        while (await cb.get("/v1/users/me", headers=bearer(token))).status_code != 401:
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 5


@needs_redis
async def test_revocation_holds_on_other_instances_while_redis_is_down(
    settings_factory: Any,
) -> None:
    assert REDIS_URL
    proxy, url = await proxy_for(REDIS_URL)
    settings = settings_factory(redis_url=url)
    try:
        async with two_instances(settings) as (_a, _b, ca, cb):
            token = await user_token(ca, "noredis")
            assert (await cb.get("/v1/users/me", headers=bearer(token))).status_code == 200
            proxy.cut()
            assert (await ca.post("/v1/auth/revoke", data={"token": token})).status_code == 200
            started = time.monotonic()
            while (await cb.get("/v1/users/me", headers=bearer(token))).status_code != 401:
                assert time.monotonic() - started < 1.5, "revocation not enforced without Redis"
                await asyncio.sleep(0.05)
    finally:
        await proxy.stop()
