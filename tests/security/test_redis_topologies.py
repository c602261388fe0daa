"""Redis Cluster and Sentinel: exact limits across instances and instant revocation
wake-ups, against real local topologies started from the Debian redis-server binary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bearer, login, register, svc_of, two_instances
from tests.support.redisnodes import MISSING, redis_cluster, redis_sentinel

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture(scope="module")
def sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_sentinel(tmp_path_factory.mktemp("sentinel")) as url:
        yield url


async def _burst_is_exact(settings: Any) -> None:
    async with two_instances(settings) as (_, _, ca, cb):
        await register(ca, "bursty")
        token = bearer((await login(ca, "bursty"))["access_token"])
        results = await asyncio.gather(
            *(c.get("/v1/users/me", headers=token) for c in [ca, cb] * 20)
        )
    codes = [r.status_code for r in results]
    assert codes.count(200) == 10 and codes.count(429) == 30, codes


async def _revocation_wakes_the_other_instance(settings: Any) -> None:
    async with two_instances(settings) as (_, b, ca, cb):
        svc_of(b).bus.poll_seconds = 30.0  # only the Redis wake-up can make b see it in time
        await asyncio.sleep(0.5)  # b's subscriber is connected
        await register(ca, "wakeful")
        tokens = await login(ca, "wakeful")
        assert (await cb.get("/v1/users/me", headers=bearer(tokens["access_token"]))).is_success
        await ca.post("/v1/auth/revoke", data={"token": tokens["access_token"]})
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            r = await cb.get("/v1/users/me", headers=bearer(tokens["access_token"]))
            if r.status_code == 401:
                return
            await asyncio.sleep(0.05)
        pytest.fail("the revocation did not reach the other instance through Redis")


# Two windows on one policy: every check is a multi-key script, which a Redis Cluster
# runs only when all its keys hash to one slot.
LIMITS = {"rate_limit_default": "10/minute;100/hour"}


async def test_cluster_limits_are_exact_across_instances(
    settings_factory: Any, cluster_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _burst_is_exact(settings_factory(redis_url=cluster_url, **LIMITS))
    assert "ratelimit.redis_unavailable" not in capsys.readouterr().out


async def test_cluster_carries_revocation_wakeups(settings_factory: Any, cluster_url: str) -> None:
    await _revocation_wakes_the_other_instance(settings_factory(redis_url=cluster_url))


async def test_cluster_readiness(settings_factory: Any, cluster_url: str) -> None:
    async with two_instances(settings_factory(redis_url=cluster_url)) as (_, _, ca, _):
        assert (await ca.get("/readyz")).json()["checks"]["redis"] == "ok"


async def test_sentinel_limits_wakeups_and_readiness(
    settings_factory: Any, sentinel_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory(redis_url=sentinel_url, **LIMITS)
    await _burst_is_exact(settings)
    await _revocation_wakes_the_other_instance(settings)
    async with two_instances(settings) as (_, _, ca, _):
        assert (await ca.get("/readyz")).json()["checks"]["redis"] == "ok"
    assert "ratelimit.redis_unavailable" not in capsys.readouterr().out


def test_sentinel_urls_need_a_master_name(tmp_path: Path) -> None:
    from service.config import Settings

    with pytest.raises(ValueError, match="names the master"):
        Settings(_env_file=None, redis_url="redis+sentinel://127.0.0.1:26379")
