"""Load shedding: at most MAX_INFLIGHT requests per worker; probes never starve."""

from __future__ import annotations

import asyncio
from typing import Any

from quart_rate_limiter import rate_exempt

from service import create_app
from service.security.authn import public
from tests.conftest import client_for


async def test_excess_requests_get_503_and_probes_still_answer(settings_factory: Any) -> None:
    app = create_app(settings_factory(max_inflight=2, inflight_wait_seconds=0.2))
    gate = asyncio.Event()
    entered = 0

    @rate_exempt
    @public
    async def slow() -> dict[str, str]:
        nonlocal entered
        entered += 1
        await gate.wait()
        return {"done": "yes"}

    app.add_url_rule("/slow", "slow", slow)
    async with app.test_app(), client_for(app) as c:
        held = [asyncio.create_task(c.get("/slow")) for _ in range(2)]
        while entered < 2:
            await asyncio.sleep(0.01)
        shed = await asyncio.gather(*(c.get("/slow") for _ in range(3)))
        for r in shed:
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.headers["content-type"] == "application/problem+json"
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).status_code == 200
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await c.get("/slow")).status_code == 200
    assert entered == 3  # the shed requests never reached the app


async def test_waiting_request_gets_a_freed_slot(settings_factory: Any) -> None:
    app = create_app(settings_factory(max_inflight=1, inflight_wait_seconds=1.0))

    @rate_exempt
    @public
    async def short() -> dict[str, str]:
        await asyncio.sleep(0.1)
        return {"ok": "1"}

    app.add_url_rule("/short", "short", short)
    async with app.test_app(), client_for(app) as c:
        results = await asyncio.gather(*(c.get("/short") for _ in range(3)))
    assert [r.status_code for r in results] == [200, 200, 200]


async def test_a_few_addresses_cannot_take_every_slot() -> None:
    """Once only a quarter of the slots are free, an address holding its share (a
    sixteenth) waits and the free slots go to other addresses; a freed slot goes to the
    longest-waiting request that may take it."""
    from service.middleware.inflight import Slots

    sent: list[int] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    slots = Slots(32, 5.0)  # share 2, reserve 8
    for _ in range(24):  # one address alone may fill the house down to the reserve
        assert await slots.enter("a", send)
    queued = asyncio.create_task(slots.enter("a", send))
    await asyncio.sleep(0)
    assert not queued.done()  # "a" waits: only the reserve is free
    for address in ("b", "c", "d", "e"):  # others may each take their share of it
        assert await slots.enter(address, send)
        assert await slots.enter(address, send)
    assert slots.active == 32 and not queued.done()
    late = asyncio.create_task(slots.enter("f", send))
    await asyncio.sleep(0)
    assert not late.done()  # full
    slots.leave("b")  # the freed slot skips "a" (over its share) and goes to "f"
    await asyncio.sleep(0)
    assert late.done() and late.result() and not queued.done()
    for _ in range(24):
        slots.leave("a")
    await asyncio.sleep(0)
    assert queued.done() and queued.result() and sent == []
