"""The scale-out cluster, started once for the whole tests/scale package: 3 replicas
behind HAProxy, on a fresh PostgreSQL database and Redis."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import flush_redis
from tests.support.cluster import Cluster, run_cluster
from tests.support.haproxy import Unavailable, ensure_haproxy

# Small budgets so the tests can exhaust them; each test speaks from its own loopback
# address (Cluster.fresh_source), so one test's spending never limits another's.
SCALE_ENV = {
    "PORTCULLIS_RATE_LIMIT_REGISTER": "10/hour",
    "PORTCULLIS_RATE_LIMIT_TOKEN": "100000/minute",
    "PORTCULLIS_RATE_LIMIT_DEFAULT": "100000/minute",
    "PORTCULLIS_BLOCK_AFTER": "10/minute",
    "PORTCULLIS_BLOCK_EXEMPT": "127.0.0.1/32",  # the harness's own direct checks
    "PORTCULLIS_KEY_ACTIVATION_SECONDS": "6",  # > 2.5 s key reload + 1 s slack + latency
    "PORTCULLIS_DRAIN_SECONDS": "4",  # > HAProxy's inter + fastinter (1.5 s) + margin
    "PORTCULLIS_LOG_LEVEL": "INFO",
}


async def fresh_database(url: str) -> str:
    """A new, empty database beside the test database: `<name>_scale`."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    name = f"{parsed.database}_scale"
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"unexpected database name {name!r}")
    admin = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, scratch: str) -> None:
    admin = create_async_engine(
        make_url(scratch).set(database=make_url(url).database), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(f'DROP DATABASE IF EXISTS "{make_url(scratch).database}" WITH (FORCE)')
            )
    finally:
        await admin.dispose()


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pg_url = os.environ.get("PORTCULLIS_TEST_DATABASE_URL")
    redis_url = os.environ.get("PORTCULLIS_TEST_REDIS_URL")
    if not pg_url or not redis_url:
        pytest.skip("the scale-out test needs PORTCULLIS_TEST_DATABASE_URL and _REDIS_URL")
    try:
        haproxy = ensure_haproxy()
    except Unavailable as exc:
        pytest.skip(f"no HAProxy: {exc}")
    database = asyncio.run(fresh_database(pg_url))
    asyncio.run(flush_redis(redis_url))
    try:
        with run_cluster(
            tmp_path_factory.mktemp("scale"),
            haproxy=haproxy,
            database_url=database,
            redis_url=redis_url,
            env=SCALE_ENV,
        ) as running:
            yield running
    finally:
        asyncio.run(drop_database(pg_url, database))


@pytest.fixture(autouse=True)
def whole_cluster(cluster: Cluster) -> Cluster:
    """Each test starts with every replica running and in the balancer's rotation,
    whatever the test before it did (killed, stopped, Redis cut)."""
    cluster.restore_redis()
    for replica in cluster.replicas:
        if replica.process is None or replica.process.poll() is not None:
            replica.start()
            replica.wait_ready()
    cluster.wait_all_up(timeout=60)
    return cluster
