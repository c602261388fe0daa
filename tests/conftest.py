"""Shared fixtures: settings on a temporary data dir, the app with its start-up hooks
run, and an httpx client speaking ASGI to the full middleware chain."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service import create_app
from service.config import Settings
from service.services import Services
from service.store.db import Database
from service.store.migrations import migrate

PG_URL = os.environ.get("PORTCULLIS_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PORTCULLIS_TEST_REDIS_URL")
CLIENT_IP = "203.0.113.10"
PASSWORD = "Tr0ub4dor&3-horse-staple"

needs_pg = pytest.mark.skipif(
    not PG_URL, reason="PORTCULLIS_TEST_DATABASE_URL is not set (no PostgreSQL to test against)"
)
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="PORTCULLIS_TEST_REDIS_URL is not set (no Redis to test against)"
)

SettingsFactory = Callable[..., Settings]


def _asyncpg_url(url: str) -> str:
    return (
        url.replace("postgresql://", "postgresql+asyncpg://", 1)
        if url.startswith("postgresql://")
        else url
    )


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(_asyncpg_url(url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def flush_redis(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    keys = [k async for k in client.scan_iter("portcullis:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings_factory(tmp_path: Path, backend: str) -> AsyncIterator[SettingsFactory]:
    if backend == "postgresql":
        assert PG_URL is not None
        await reset_postgres(PG_URL)

    def make(**overrides: Any) -> Settings:
        # Generous limits by default; the limit tests set their own.
        values: dict[str, Any] = {
            "data_dir": tmp_path / "var",
            "certfile": tmp_path / "none.pem",
            "rate_limit_register": "1000/minute",
            "rate_limit_token": "1000/minute",
            "block_after": "1000/minute",
        }
        if backend == "postgresql":
            values["database_url"] = _asyncpg_url(str(PG_URL))
        values.update(overrides)
        return Settings(_env_file=None, **values)

    yield make


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A migrated database and nothing else (the store and domain tests)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_dsn)
    try:
        await migrate(database)
        yield database
    finally:
        await database.close()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    application = create_app(settings)
    async with application.test_app():
        yield application


def client_for(app: Quart, ip: str = CLIENT_IP, scheme: str = "https") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver")


@pytest.fixture
async def client(app: Quart) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@contextlib.asynccontextmanager
async def two_instances(
    settings: Settings, ip: str = CLIENT_IP
) -> AsyncIterator[tuple[Quart, Quart, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two app instances (two replicas) on the same settings, each with a client."""
    a, b = create_app(settings), create_app(settings)
    async with a.test_app(), b.test_app(), client_for(a, ip) as ca, client_for(b, ip) as cb:
        yield a, b, ca, cb


def svc_of(app: Quart) -> Services:
    svc: Services = app.extensions["portcullis"]
    return svc


async def register(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await client.post("/v1/auth/register", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> dict[str, Any]:
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def user_token(client: httpx.AsyncClient, username: str) -> str:
    await register(client, username)
    return str((await login(client, username))["access_token"])


async def make_admin(app: Quart, client: httpx.AsyncClient, username: str = "root") -> str:
    from service.domain import identity

    await identity.register(svc_of(app), username=username, password=PASSWORD, role="admin")
    return str((await login(client, username))["access_token"])


async def client_token(
    app: Quart, client: httpx.AsyncClient, scopes: list[str], name: str = "robot"
) -> tuple[Any, str]:
    """A new OAuth client and an access token from client_credentials (body auth)."""
    from service.domain import identity

    created = await identity.create_client(
        svc_of(app), name=name, scopes=scopes, actor=None, ip=None
    )
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
        },
    )
    assert r.status_code == 200, r.text
    return created, str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
