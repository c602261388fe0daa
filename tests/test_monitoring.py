"""Monitoring: metrics after known requests, automatic blocking, readiness outages."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from service import create_app
from service.metrics import AUTH_FAILURE_REASONS, RATELIMIT_POLICIES
from service.store import signals
from tests.conftest import (
    PASSWORD,
    PG_URL,
    REDIS_URL,
    bearer,
    client_for,
    make_admin,
    needs_pg,
    needs_redis,
    register,
    reset_postgres,
    svc_of,
    two_instances,
    user_token,
)
from tests.support.tcpproxy import proxy_for

ATTACKER = "198.51.100.66"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_after_a_known_sequence(app: Quart, client: httpx.AsyncClient) -> None:
    await register(client, "metric")
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "metric", "password": "bad-password-1"},
    )
    token = bearer(
        (
            await client.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": "metric", "password": PASSWORD},
            )
        ).json()["access_token"]
    )
    note = (await client.post("/v1/notes", json={"title": "x"}, headers=token)).json()
    await client.get(f"/v1/notes/{note['id']}", headers=token)
    await client.get(f"/v1/notes/{note['id']}", headers=token)
    await client.get("/v1/users/me", headers={"Authorization": "Bearer a.b.c"})
    await client.get("/v1/users/me", headers=bearer("x" * 5000))
    async with client_for(app, ip="127.0.0.1") as local:
        text = (await local.get("/metrics")).text
        assert (await local.get("/metrics")).headers["content-type"].startswith("text/plain")
    assert (
        value(
            text,
            "portcullis_http_requests_total",
            method="GET",
            route="/v1/notes/<note_id>",
            status="200",
        )
        == 2
    )
    assert (
        value(
            text,
            "portcullis_http_requests_total",
            method="POST",
            route="/v1/auth/token",
            status="400",
        )
        == 1
    )
    assert (
        value(
            text, "portcullis_http_request_duration_seconds_count", method="POST", route="/v1/notes"
        )
        == 1
    )
    assert value(text, "portcullis_logins_total", outcome="failure") == 1
    assert value(text, "portcullis_logins_total", outcome="success") == 1
    assert value(text, "portcullis_auth_failures_total", reason="malformed") == 1
    assert value(text, "portcullis_auth_failures_total", reason="oversized") == 1
    assert value(text, "portcullis_http_requests_in_flight") == 1  # the scrape itself
    assert value(text, "portcullis_dependency_up", dependency="database") in (0, 1)
    # no raw path, id, IP or username in any label
    for (name, labels), _ in samples(text).items():
        for _, label in labels:
            assert note["id"] not in label and "metric" != label and "127.0.0.1" not in label, (
                name,
                label,
            )


def documented_codes(heading: str) -> set[str]:
    """The backticked codes of one paragraph of docs/operations.md (not in brackets)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
    paragraph = text.split(heading, 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", paragraph)))


def test_fixed_label_values_are_the_documented_ones() -> None:
    assert set(AUTH_FAILURE_REASONS) == documented_codes("Auth failure reasons")
    policies = {"default", "token", "register", "login"}  # the contract's metrics table
    assert set(RATELIMIT_POLICIES) == policies


@pytest.mark.parametrize("with_redis", [False, pytest.param(True, marks=needs_redis)])
async def test_every_fixed_label_value_is_scraped_as_zero_from_the_start(
    settings_factory: Any, with_redis: bool
) -> None:
    """Alert rules see 0, never "absent", before the first event; a dependency not yet
    checked is not reported up."""
    settings = settings_factory(redis_url=REDIS_URL) if with_redis else settings_factory()
    app = create_app(settings)
    async with app.test_app(), client_for(app, ip="127.0.0.1") as local:
        text = (await local.get("/metrics")).text
        unchecked = svc_of(app).health.readiness.checked == 0.0  # the upkeep loop had not run yet
        await svc_of(app).health.check_ready()  # the first readiness check reports the truth
        checked = (await local.get("/metrics")).text
    found = samples(text)
    expected = [
        *(("portcullis_auth_failures_total", "reason", r) for r in AUTH_FAILURE_REASONS),
        *(("portcullis_logins_total", "outcome", o) for o in ("success", "failure")),
        *(("portcullis_ratelimit_rejections_total", "policy", p) for p in RATELIMIT_POLICIES),
        ("portcullis_dependency_up", "dependency", "database"),
    ]
    if with_redis:
        expected.append(("portcullis_dependency_up", "dependency", "redis"))
    for name, label, val in expected:
        assert (name, ((label, val),)) in found, (name, val)
        if name != "portcullis_dependency_up" or unchecked:
            assert found[(name, ((label, val),))] == 0.0, (name, val)
    assert found.get(("portcullis_client_blocks_total", ())) == 0.0
    redis_series = ("portcullis_dependency_up", (("dependency", "redis"),))
    assert (redis_series in found) is with_redis  # no series for an unconfigured Redis
    assert value(checked, "portcullis_dependency_up", dependency="database") == 1
    if with_redis:
        assert value(checked, "portcullis_dependency_up", dependency="redis") == 1


async def test_metrics_only_for_allowed_networks(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 404 and "portcullis_" not in r.text


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


@needs_pg
async def test_database_outage_readiness_and_recovery(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PG_URL
    await reset_postgres(PG_URL)
    proxy, dsn = await proxy_for(PG_URL)
    app = create_app(settings_factory(database_url=dsn))
    try:
        async with app.test_app(), client_for(app) as c, client_for(app, ip="127.0.0.1") as local:
            token = bearer(await user_token(c, "outage"))
            assert (await c.get("/readyz")).json() == {
                "status": "ready",
                "checks": {"database": "ok", "redis": "disabled"},
            }
            proxy.cut()
            started = time.monotonic()
            r = await c.get("/readyz")
            assert time.monotonic() - started < 5
            assert r.status_code == 503 and r.headers["retry-after"]
            assert r.json() == {
                "status": "unavailable",
                "checks": {"database": "unavailable", "redis": "disabled"},
            }
            r = await c.get("/v1/notes", headers=token)
            assert r.status_code == 503 and r.headers["retry-after"]
            assert r.headers["content-type"] == "application/problem+json"
            assert "asyncpg" not in r.text and "Traceback" not in r.text
            # bearer authentication needs no database
            assert (await c.get("/healthz")).status_code == 200
            metrics = await local.get("/metrics")
            assert metrics.status_code == 200
            assert value(metrics.text, "portcullis_dependency_up", dependency="database") == 0
            proxy.restore()
            deadline = time.monotonic() + 10
            while (await c.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "not ready again within 10 s"
                await asyncio.sleep(0.2)
            assert (await c.get("/v1/notes", headers=token)).status_code == 200
    finally:
        await proxy.stop()
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any(r["event"] == "dependency.down" and r["level"] == "ERROR" for r in records)


@needs_pg
async def test_start_while_database_is_down_then_recover(settings_factory: Any) -> None:
    assert PG_URL
    await reset_postgres(PG_URL)
    proxy, dsn = await proxy_for(PG_URL)
    proxy.cut()
    app = create_app(settings_factory(database_url=dsn))
    try:
        async with app.test_app(), client_for(app) as c:
            assert (await c.get("/healthz")).status_code == 200
            assert (await c.get("/readyz")).status_code == 503
            r = await c.post("/v1/auth/register", json={"username": "early", "password": PASSWORD})
            assert r.status_code == 503 and r.headers["retry-after"]
            proxy.restore()
            deadline = time.monotonic() + 10
            while (await c.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the background migration has run by now
            await register(c, "early")
    finally:
        await proxy.stop()


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
