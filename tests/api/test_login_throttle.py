"""Failed-password budgets (`login` policy): attackers are slowed down, the owner is
never locked out from a fresh address, and every instance shares the budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from quart import Quart

from service import create_app
from service.config import Settings
from service.services import Services
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

OWNER_IP = "198.51.100.77"


async def attempt(
    client: httpx.AsyncClient, password: str, username: str = "bob"
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def register_bob(app: Quart) -> None:
    async with client_for(app, "192.0.2.200") as c:
        r = await c.post("/v1/auth/register", json={"username": "bob", "password": PASSWORD})
        assert r.status_code == 201, r.text


def sample(svc: Services, name: str, **labels: str) -> float:
    return svc.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def app_for(settings_factory: SettingsFactory) -> AsyncIterator[Quart]:
    application = create_app(settings_factory(rate_limit_login="5/minute;100/hour"))
    async with application.test_app():
        yield application


async def test_attackers_cannot_lock_out_the_owner(app_for: Quart) -> None:
    """The issue's attack: many wrong passwords for bob from elsewhere, then bob logs in."""
    app = app_for
    await register_bob(app)
    svc = svc_of(app)
    statuses = []
    for i in range(12):
        async with client_for(app, "203.0.113.66") as attacker:
            r = await attempt(attacker, f"wrong-password-{i}")
        statuses.append(r.status_code)
        assert '"login";q=5;w=60' in r.headers["ratelimit-policy"], r.headers
        assert '"token";q=1000;w=60' in r.headers["ratelimit-policy"]
    assert statuses == [400] * 5 + [429] * 7
    # the refused pair is told which policy refused it, once, with a retry time
    assert r.headers["ratelimit"].startswith('"login";r=0;t='), r.headers["ratelimit"]
    assert len(r.headers.get_list("retry-after")) == 1
    assert r.headers["content-type"] == "application/problem+json"
    # more attacker addresses, each within its own budget: the account is still open
    for n in range(4):
        async with client_for(app, f"203.0.113.{n + 1}") as attacker:
            for i in range(4):
                assert (await attempt(attacker, f"wrong-{n}-{i}-password")).status_code == 400
    async with client_for(app, OWNER_IP) as owner:
        r = await attempt(owner, PASSWORD)
    assert r.status_code == 200, r.text
    assert '"login";q=5;w=60' in r.headers["ratelimit-policy"]
    # the throttled attacker pair stays refused, even with bob's right password
    async with client_for(app, "203.0.113.66") as attacker:
        assert (await attempt(attacker, PASSWORD)).status_code == 429
    assert sample(svc, "portcullis_ratelimit_rejections_total", policy="login") == 8
    assert sample(svc, "portcullis_logins_total", outcome="failure") == 5 + 7 + 16 + 1
    assert sample(svc, "portcullis_logins_total", outcome="success") == 1


async def test_rotating_forwarded_headers_does_not_reset_the_pair(app_for: Quart) -> None:
    """X-Forwarded-For from an untrusted peer is ignored, so rotating it changes nothing."""
    await register_bob(app_for)
    statuses = []
    async with client_for(app_for, "203.0.113.66") as attacker:
        for i in range(7):
            r = await attacker.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": "bob", "password": f"bad-{i}-pass"},
                headers={"X-Forwarded-For": f"10.0.0.{i}", "X-Real-IP": f"10.1.0.{i}"},
            )
            statuses.append(r.status_code)
    assert statuses == [400] * 5 + [429] * 2


async def test_an_ipv6_attacker_cannot_rotate_within_its_64(app_for: Quart) -> None:
    await register_bob(app_for)
    statuses = []
    for i in range(7):
        async with client_for(app_for, f"2001:db8:1:2::{i + 1:x}") as attacker:
            statuses.append((await attempt(attacker, f"wrong-password-{i}")).status_code)
    assert statuses == [400] * 5 + [429] * 2
    async with client_for(app_for, "2001:db8:1:3::1") as owner:  # another /64
        assert (await attempt(owner, PASSWORD)).status_code == 200


async def test_account_ceiling_refuses_failing_addresses_only(
    settings_factory: SettingsFactory,
) -> None:
    """Over the account-wide ceiling, addresses that failed for the account wait; a fresh
    address still has its password checked, so the owner gets in and a guesser gets one
    try per new address."""
    app = create_app(settings_factory(rate_limit_login="3/minute;6/hour"))
    async with app.test_app():
        await register_bob(app)
        for n in range(3):  # 6 failures from 3 addresses, each within its pair budget
            async with client_for(app, f"203.0.113.{n + 1}") as attacker:
                for i in range(2):
                    assert (await attempt(attacker, f"wrong-{n}-{i}-password")).status_code == 400
        async with client_for(app, "203.0.113.1") as attacker:
            r = await attempt(attacker, "wrong-password-again")
            assert r.status_code == 429  # its pair has room; the ceiling is spent
            assert r.headers["ratelimit"].startswith('"login";r=0;t='), r.headers
            assert (await attempt(attacker, PASSWORD)).status_code == 429
        async with client_for(app, "203.0.113.9") as newcomer:
            assert (await attempt(newcomer, "wrong-password-new")).status_code == 400
            assert (await attempt(newcomer, "wrong-password-new2")).status_code == 429
        async with client_for(app, OWNER_IP) as owner:
            r = await attempt(owner, PASSWORD)
            assert r.status_code == 200, r.text
            assert (await attempt(owner, PASSWORD)).status_code == 200


async def test_unknown_accounts_are_throttled_alike(app_for: Quart) -> None:
    """No account enumeration through the limiter: a missing user has budgets too."""
    async with client_for(app_for, "203.0.113.66") as attacker:
        codes = [(await attempt(attacker, "x-password-1", "ghost")).status_code for _ in range(6)]
    assert codes == [400] * 5 + [429]


def test_login_setting_needs_two_limits() -> None:
    Settings(_env_file=None, rate_limit_login="10/minute;1000/day")
    for bad in ("5/minute", "5/minute;100/hour;1/second", "often"):
        with pytest.raises(ValueError, match=r"rate limit|two limits"):
            Settings(_env_file=None, rate_limit_login=bad)


@needs_redis
async def test_budgets_are_shared_by_instances_through_redis(
    settings_factory: SettingsFactory,
) -> None:
    assert REDIS_URL is not None
    await flush_redis(REDIS_URL)
    settings = settings_factory(redis_url=REDIS_URL, rate_limit_login="5/minute;100/hour")
    async with two_instances(settings) as (a, b, _ca, _cb):
        await register_bob(a)
        async with client_for(a, "203.0.113.66") as on_a, client_for(b, "203.0.113.66") as on_b:
            for i in range(5):
                client = on_a if i % 2 else on_b
                assert (await attempt(client, f"wrong-password-{i}")).status_code == 400
            r = await attempt(on_b, "wrong-password-5")
            assert r.status_code == 429
            assert r.headers["ratelimit"].startswith('"login";r=0;t=')
            assert (await attempt(on_a, "wrong-password-6")).status_code == 429
        async with client_for(b, OWNER_IP) as owner:
            assert (await attempt(owner, PASSWORD)).status_code == 200
    await flush_redis(REDIS_URL)
