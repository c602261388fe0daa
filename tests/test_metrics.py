"""Metrics: values after known requests, fixed label sets scraped as zero from the start,
and /metrics only for the allowed networks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from service import create_app
from service.metrics import AUTH_FAILURE_REASONS, RATELIMIT_POLICIES
from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    bearer,
    client_for,
    needs_redis,
    register,
    svc_of,
)
from tests.support.metrics import samples, value


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
    # the contract's policy names, and the OpenAPI document's own limit
    policies = {"default", "token", "register", "login", "openapi"}
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


async def test_in_flight_is_exact_at_scrape_and_published_within_the_interval() -> None:
    import asyncio

    from prometheus_client import generate_latest

    from service.metrics import IN_FLIGHT_PUBLISH_SECONDS, Metrics

    metrics = Metrics()

    def written() -> float:  # the gauge as another process's scrape would read it
        return value(
            generate_latest(metrics.registry).decode(), "portcullis_http_requests_in_flight"
        )

    for _ in range(3):
        metrics.request_started()
    metrics.request_finished()
    assert written() == 0  # not written on every request
    await asyncio.sleep(IN_FLIGHT_PUBLISH_SECONDS * 2)
    assert written() == 2  # written within the interval, with no scrape
    metrics.request_finished()
    metrics.request_finished()
    rendered, _ = metrics.render()  # this process's own scrape: exact at once
    assert value(rendered.decode(), "portcullis_http_requests_in_flight") == 0
    metrics.request_started()
    await asyncio.sleep(IN_FLIGHT_PUBLISH_SECONDS * 2)
    assert written() == 1  # a change after a scrape is published again


async def test_made_up_methods_make_no_new_series(app: Quart, client: httpx.AsyncClient) -> None:
    """A client chooses no label value: methods outside the standard set are `OTHER`,
    and odd paths land in fixed route buckets."""

    def request_series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {k for k in samples(text) if k[0].startswith("portcullis_http_request")}

    for i in range(40):
        await client.request(f"X{i}FOO", f"/v1/made-up-{i}")
        await client.request(f"X{i}FOO", "/healthz")
    async with client_for(app, ip="127.0.0.1") as scraper:
        before = (await scraper.get("/metrics")).text
    for i in range(40, 80):
        await client.request(f"X{i}FOO", f"/v1/made-up-{i}")
        await client.request(f"X{i}FOO", "/healthz")
        await client.request("GET", f"/v1/made-up-{i}")
    async with client_for(app, ip="127.0.0.1") as scraper:
        after = (await scraper.get("/metrics")).text
    assert request_series(after) == request_series(before) | {
        k for k in request_series(after) if ("method", "GET") in k[1]
    }
    labels = [dict(k[1]) for k in request_series(after)]
    methods = {x["method"] for x in labels if "method" in x}
    assert "OTHER" in methods and methods <= {"GET", "HEAD", "POST", "OTHER"}
    routes = {x["route"] for x in labels if "route" in x}
    assert not any("made-up" in r for r in routes) and "<unmatched>" in routes
    other = {
        k: v
        for k, v in samples(after).items()
        if k[0] == "portcullis_http_requests_total" and ("method", "OTHER") in k[1]
    }
    by_route = {r: sum(v for k, v in other.items() if ("route", r) in k[1]) for r in routes}
    assert by_route["<unmatched>"] == 80 and by_route["<probe>"] == 80


def test_dpop_outcomes_are_the_documented_ones() -> None:
    from service.metrics import DPOP_OUTCOMES
    from service.security.dpop import REASONS

    assert DPOP_OUTCOMES == ("accepted", *REASONS)
    assert set(DPOP_OUTCOMES) == documented_codes("DPoP proof outcomes")
