"""A hung Redis (it accepts connections and never answers, like a SIGSTOP) must not
stall requests: no request waits on it past the limiter's deadline, one probe at a
time finds out whether it is back, and meanwhile each process enforces only its share
of every limit, not a fresh full budget."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from quart import Quart

from service import create_app
from service.redisclient import WARM_CONNECTIONS
from service.security.ratelimit import REDIS_DEADLINE
from tests.conftest import (
    CLIENT_IP,
    REDIS_URL,
    bearer,
    client_for,
    flush_redis,
    needs_redis,
    svc_of,
    user_token,
)
from tests.support.tcpproxy import TcpProxy, proxy_for

pytestmark = needs_redis


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed_load(
    call: Callable[[], Awaitable[httpx.Response]], seconds: float, concurrency: int = 8
) -> tuple[list[float], list[int]]:
    """`concurrency` callers in a loop for `seconds`: every latency and status."""
    latencies: list[float] = []
    codes: list[int] = []
    end = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < end:
            start = time.monotonic()
            r = await call()
            latencies.append(time.monotonic() - start)
            codes.append(r.status_code)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, codes


class RedisCalls:
    """Wraps the limiter's Redis engine: how many calls (checks by requests, probes)
    run at once, and how long each check took."""

    def __init__(self, engine: Any) -> None:
        self.running = 0
        self.most = 0
        self.checks: list[float] = []
        self.probes = 0
        for name in ("check", "ping"):
            setattr(engine, name, self._counted(name, getattr(engine, name)))

    def _counted(self, name: str, real: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.running += 1
            self.most = max(self.most, self.running)
            self.probes += name == "ping"
            start = time.monotonic()
            try:
                return await real(*args, **kwargs)
            finally:
                self.running -= 1
                if name == "check":
                    self.checks.append(time.monotonic() - start)

        return counted

    def reset(self) -> None:
        self.most, self.checks, self.probes = self.running, [], 0


@contextlib.asynccontextmanager
async def service_behind_proxy(
    settings_factory: Any, ip: str = CLIENT_IP, **settings: Any
) -> AsyncIterator[tuple[Quart, TcpProxy, httpx.AsyncClient]]:
    """The service with its Redis behind a proxy the test freezes, cuts and restores;
    Redis flushed before and after, the proxy thawed and stopped whatever happened."""
    assert REDIS_URL
    await flush_redis(REDIS_URL)
    proxy, url = await proxy_for(REDIS_URL)
    app = create_app(settings_factory(redis_url=url, **settings))
    try:
        async with app.test_app(), client_for(app, ip) as c:
            yield app, proxy, c
    finally:
        proxy.thaw()
        await proxy.stop()
        await flush_redis(REDIS_URL)


async def test_a_hung_redis_adds_at_most_the_deadline_and_is_probed_one_at_a_time(
    settings_factory: Any,
) -> None:
    async with service_behind_proxy(settings_factory, rate_limit_default="100000/minute") as rig:
        app, proxy, c = rig
        token = bearer(await user_token(c, "hung"))

        async def me() -> httpx.Response:
            return await c.get("/v1/users/me", headers=token)

        svc = svc_of(app)
        calls = RedisCalls(svc.limiter.redis)
        healthy, codes = await timed_load(me, 3.0)
        assert set(codes) == {200} and calls.checks
        proxy.freeze()
        start = time.monotonic()
        await me()  # the request that finds Redis hung: it waits out the deadline
        assert time.monotonic() - start < REDIS_DEADLINE + 0.1
        calls.reset()
        hung, codes = await timed_load(me, 3.0)  # spans several probe intervals
        assert set(codes) == {200}
        assert calls.checks == []  # no request waited on the hung Redis
        assert calls.most <= 1, f"{calls.most} calls waited on Redis at once"
        assert 1 <= calls.probes <= 3  # one probe at a time, one per retry interval
        added = p99(hung) - p99(healthy)
        assert added <= 0.1, f"p99 {p99(healthy):.3f}s healthy, {p99(hung):.3f}s hung"
        proxy.thaw()
        await asyncio.sleep(svc.limiter.retry_seconds + 0.1)
        await me()
        assert not svc.limiter.redis_suspect  # back to the shared budgets


async def test_while_redis_is_down_a_process_enforces_only_its_share(
    settings_factory: Any,
) -> None:
    async with service_behind_proxy(settings_factory, rate_limit_default="10/minute") as rig:
        app, proxy, c = rig
        token = bearer(await user_token(c, "share"))
        svc_of(app).limiter.share = 2  # two worker processes on this host
        proxy.cut()
        codes = [(await c.get("/v1/users/me", headers=token)).status_code for _ in range(10)]
        assert codes.count(200) == 5, codes  # 10 // 2, not a fresh budget of 10
        assert codes[5:] == [429] * 5


async def test_after_an_outage_the_pool_is_open_again_before_requests_return(
    settings_factory: Any,
) -> None:
    """An outage drops every pooled connection. Requests go back to Redis only once the
    probe has opened them again (as at start-up): a burst that had to reconnect them
    itself would wait past the deadline and be limited in memory, beside the shared
    budget (seen in the scale-out test right after Redis returned)."""
    async with service_behind_proxy(settings_factory, rate_limit_default="100000/minute") as rig:
        app, proxy, c = rig
        token = bearer(await user_token(c, "reopened"))
        svc = svc_of(app)
        assert proxy.connections >= WARM_CONNECTIONS  # opened at start-up
        proxy.cut()
        assert (await c.get("/v1/users/me", headers=token)).status_code == 200  # memory
        assert svc.limiter.redis_suspect
        await asyncio.sleep(svc.limiter.retry_seconds + 0.2)  # a probe fails: an outage
        assert svc.limiter.redis_suspect and proxy.connections == 0
        proxy.restore()
        deadline = time.monotonic() + 10
        while svc.limiter.redis_suspect and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not svc.limiter.redis_suspect
        assert proxy.connections >= WARM_CONNECTIONS, proxy.connections


@pytest.mark.parametrize("hang", ["freeze", "cut"])
async def test_login_budgets_hold_while_redis_hangs(settings_factory: Any, hang: str) -> None:
    """Spent at admission in the fallback too: a burst of guesses while Redis hangs
    checks at most this process's share of the pair budget."""
    async with service_behind_proxy(
        settings_factory, "198.51.100.9", rate_limit_login="6/minute;100/hour"
    ) as (app, proxy, c):
        await user_token(c, "alice")
        svc = svc_of(app)
        svc.limiter.share = 2
        getattr(proxy, hang)()
        answers = await asyncio.gather(
            *(
                c.post(
                    "/v1/auth/token",
                    data={"grant_type": "password", "username": "alice", "password": f"w{i}"},
                )
                for i in range(12)
            )
        )
        codes = [a.status_code for a in answers]
        assert codes.count(400) == 3 and codes.count(429) == 9, codes
