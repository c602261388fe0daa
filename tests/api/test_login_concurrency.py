"""Concurrent guesses against the login budgets (`login` policy), from the attacker's
side: a burst that arrives together must not check more passwords than the budgets
allow, on one instance or on two sharing Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from quart import Quart

from service import create_app
from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    SettingsFactory,
    client_for,
    flush_redis,
    needs_redis,
    svc_of,
    two_instances,
)

Verify = Callable[[str | None, str], Awaitable[bool]]


async def attempt(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "bob", "password": password},
    )


@contextmanager
def counted_verifications(monkeypatch: pytest.MonkeyPatch, *apps: Quart) -> Iterator[list[int]]:
    """Count the passwords really checked (Argon2 runs); each check is held a moment so
    that the burst overlaps the way it does on a loaded server."""
    checked = [0]

    def held(real: Verify) -> Verify:
        async def verify(stored: str | None, password: str) -> bool:
            checked[0] += 1
            await asyncio.sleep(0.2)
            return await real(stored, password)

        return verify

    for app in apps:
        svc = svc_of(app)
        monkeypatch.setattr(svc.passwords, "verify_or_dummy", held(svc.passwords.verify_or_dummy))
    yield checked


async def register_bob(app: Quart) -> None:
    async with client_for(app, "192.0.2.200") as c:
        r = await c.post("/v1/auth/register", json={"username": "bob", "password": PASSWORD})
        assert r.status_code == 201, r.text


async def test_a_concurrent_burst_from_one_address_checks_at_most_the_pair_budget(
    settings_factory: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings_factory(rate_limit_login="5/minute;100/hour"))
    async with app.test_app():
        await register_bob(app)
        with counted_verifications(monkeypatch, app) as checked:
            async with client_for(app, "203.0.113.66") as attacker:
                answers = await asyncio.gather(
                    *(attempt(attacker, f"wrong-password-{i}") for i in range(15))
                )
        codes = sorted(r.status_code for r in answers)
        assert checked[0] <= 5, f"{checked[0]} passwords checked against a budget of 5"
        assert codes == [400] * checked[0] + [429] * (15 - checked[0])
        # the owner, elsewhere, is not locked out by the burst
        async with client_for(app, "198.51.100.77") as owner:
            assert (await attempt(owner, PASSWORD)).status_code == 200


async def test_above_the_ceiling_each_fresh_address_gets_one_guess_even_in_a_burst(
    settings_factory: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings_factory(rate_limit_login="5/minute;10/hour"))
    async with app.test_app():
        await register_bob(app)
        for n in range(2):  # spend the account ceiling from two addresses
            async with client_for(app, f"203.0.113.{n + 1}") as attacker:
                for i in range(5):
                    assert (await attempt(attacker, f"wrong-{n}-{i}-password")).status_code == 400
        with counted_verifications(monkeypatch, app) as checked:
            clients = [client_for(app, f"198.18.0.{n + 1}") for n in range(6)]
            answers = await asyncio.gather(
                *(attempt(c, f"guess-{i}-password") for c in clients for i in range(20))
            )
            for c in clients:
                await c.aclose()
        assert checked[0] <= 6, f"{checked[0]} guesses from 6 fresh addresses"
        assert [r.status_code for r in answers].count(429) >= 6 * 19
        async with client_for(app, "198.51.100.77") as owner:  # a fresh address of the owner
            assert (await attempt(owner, PASSWORD)).status_code == 200


async def test_a_right_password_gives_its_budget_back(
    settings_factory: SettingsFactory,
) -> None:
    app = create_app(settings_factory(rate_limit_login="3/minute;100/hour"))
    async with app.test_app():
        await register_bob(app)
        async with client_for(app, "198.51.100.77") as owner:
            assert (await attempt(owner, "typo-password-1")).status_code == 400
            assert (await attempt(owner, "typo-password-2")).status_code == 400
            for _ in range(5):  # logins that succeed spend nothing
                assert (await attempt(owner, PASSWORD)).status_code == 200
            assert (await attempt(owner, "typo-password-3")).status_code == 400
            assert (await attempt(owner, "typo-password-4")).status_code == 429


@needs_redis
async def test_a_burst_split_over_two_instances_sharing_redis(
    settings_factory: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert REDIS_URL is not None
    await flush_redis(REDIS_URL)
    settings = settings_factory(redis_url=REDIS_URL, rate_limit_login="5/minute;100/hour")
    try:
        async with two_instances(settings, "203.0.113.66") as (a, b, on_a, on_b):
            await register_bob(a)
            with counted_verifications(monkeypatch, a, b) as checked:
                answers = await asyncio.gather(
                    *(attempt(on_a if i % 2 else on_b, f"wrong-password-{i}") for i in range(16))
                )
            assert checked[0] <= 5, f"{checked[0]} passwords checked against a budget of 5"
            assert sorted(r.status_code for r in answers).count(429) >= 11
    finally:
        await flush_redis(REDIS_URL)
