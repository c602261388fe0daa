"""Readiness: through dependency outages (a database that goes away and comes back, a
replica started while the database is down), and when a migration job, not the replica,
upgrades the schema."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from service import create_app
from service.health import READY_CACHE_SECONDS
from service.store.db import Database
from service.store.migrations import migrate
from tests.conftest import (
    PASSWORD,
    PG_URL,
    bearer,
    client_for,
    needs_pg,
    register,
    reset_postgres,
    user_token,
)
from tests.support.metrics import value
from tests.support.tcpproxy import proxy_for


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
            await asyncio.sleep(READY_CACHE_SECONDS)  # /readyz answers from its cache meanwhile
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


async def test_replica_without_start_migration_waits_for_the_job(settings_factory: Any) -> None:
    settings = settings_factory(migrate_on_start=False)
    app = create_app(settings)
    async with app.test_app(), client_for(app) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "schema_behind"
        db = Database(settings.database_dsn)  # the migration job
        try:
            await migrate(db)
        finally:
            await db.close()
        deadline = time.monotonic() + 10
        while (await c.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "not ready after the migration job ran"
            await asyncio.sleep(0.1)
        assert (await c.get("/readyz")).json()["checks"]["database"] == "ok"
