"""/readyz under a flood costs one dependency check per second, and the dependency
gauges tell the truth from the first scrape (service/health.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service import create_app
from service.health import READY_CACHE_SECONDS
from tests.conftest import REDIS_URL, client_for, flush_redis, needs_redis, svc_of
from tests.support.metrics import value


@pytest.mark.parametrize("with_redis", [False, pytest.param(True, marks=needs_redis)])
async def test_dependency_up_reads_1_from_the_first_scrape(
    settings_factory: Any, with_redis: bool
) -> None:
    settings = settings_factory(redis_url=REDIS_URL) if with_redis else settings_factory()
    app = create_app(settings)
    async with app.test_app(), client_for(app, ip="127.0.0.1") as local:
        text = (await local.get("/metrics")).text  # before any upkeep round or /readyz
    assert value(text, "portcullis_dependency_up", dependency="database") == 1
    if with_redis:
        assert value(text, "portcullis_dependency_up", dependency="redis") == 1
        assert REDIS_URL
        await flush_redis(REDIS_URL)


async def stop_upkeep(app: Any) -> None:
    for task in svc_of(app)._tasks:
        if task.get_name() == "portcullis-upkeep":
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class CountedPings:
    def __init__(self, target: Any) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        real = target.ping

        async def ping() -> Any:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                await asyncio.sleep(0.05)  # a database that takes a moment to answer
                return await real()
            finally:
                self.running -= 1

        target.ping = ping


async def test_a_readyz_flood_costs_one_check_per_second(settings_factory: Any) -> None:
    app = create_app(settings_factory())
    async with app.test_app(), client_for(app) as c:
        await stop_upkeep(app)  # its own checks every few seconds would count too
        pings = CountedPings(svc_of(app).db)
        answers = await asyncio.gather(*(c.get("/readyz") for _ in range(200)))
        assert {r.status_code for r in answers} == {200}
        assert {r.json()["status"] for r in answers} == {"ready"}
        assert pings.calls == 1 and pings.most == 1
        for _ in range(20):  # within the second: the same answer, no new check
            assert (await c.get("/readyz")).status_code == 200
        assert pings.calls == 1
        await asyncio.sleep(READY_CACHE_SECONDS + 0.1)
        answers = await asyncio.gather(*(c.get("/readyz") for _ in range(50)))
        assert {r.status_code for r in answers} == {200}
        assert pings.calls == 2 and pings.most == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_check(
    settings_factory: Any,
) -> None:
    app = create_app(settings_factory())
    async with app.test_app(), client_for(app) as c:
        await asyncio.sleep(READY_CACHE_SECONDS)
        pings = CountedPings(svc_of(app).db)
        first = asyncio.create_task(c.get("/readyz"))
        await asyncio.sleep(0.01)
        first.cancel()
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert pings.calls == 1
