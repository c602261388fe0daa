"""Readiness when a migration job, not the replica, upgrades the schema."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service import create_app
from service.store.db import Database
from service.store.migrations import migrate
from tests.conftest import client_for


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
