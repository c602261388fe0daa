"""Each proof counts once, on every worker and every replica (RFC 9449 §11.1), and the
replay cache forgets what can no longer be replayed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from sqlalchemy import event, func, select

from service.config import Settings
from service.errors import ServiceUnavailable
from service.security.dpop import REPLAY_TTL_SECONDS
from service.security.dpop_replay import PREFIX, ReplayCache
from service.store.tables import dpop_proofs
from tests.conftest import (
    PASSWORD,
    PG_URL,
    REDIS_URL,
    SettingsFactory,
    client_for,
    flush_redis,
    register,
    reset_postgres,
    svc_of,
    two_instances,
)
from tests.support.server import run_server
from tests.support.tcpproxy import TcpProxy, proxy_for

from .conftest import dpop_login
from .proofs import ISSUER, ME_URL, TOKEN_URL, Holder

FORM = {"grant_type": "password", "username": "alice", "password": PASSWORD}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not PG_URL, reason="PORTCULLIS_TEST_DATABASE_URL is not set"),
        ),
        pytest.param(
            "postgresql+redis",
            marks=pytest.mark.skipif(
                not (PG_URL and REDIS_URL),
                reason="PORTCULLIS_TEST_DATABASE_URL / PORTCULLIS_TEST_REDIS_URL are not set",
            ),
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return "postgresql" if str(request.param).startswith("postgresql") else "sqlite"


@pytest.fixture
async def settings(settings_factory: SettingsFactory, request: pytest.FixtureRequest) -> Settings:
    with_redis = "redis" in request.node.callspec.params.get("backend", "")
    if with_redis:
        assert REDIS_URL is not None
        await flush_redis(REDIS_URL)
        return settings_factory(issuer=ISSUER, redis_url=REDIS_URL)
    return settings_factory(issuer=ISSUER)


async def test_a_proof_replayed_on_another_replica_is_refused(
    settings: Settings, holder: Holder
) -> None:
    async with two_instances(settings) as (a, b, ca, cb):
        await register(ca, "alice")
        proof = holder.proof("POST", TOKEN_URL)
        first = await ca.post("/v1/auth/token", data=FORM, headers={"DPoP": proof})
        assert first.status_code == 200, first.text
        replay = await cb.post("/v1/auth/token", data=FORM, headers={"DPoP": proof})
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_dpop_proof"
        assert svc_of(b).metrics.dpop_proofs.labels("replayed")._value.get() == 1
        # a burst of the same fresh proof on both replicas: exactly one wins
        proof = holder.proof("POST", TOKEN_URL)
        answers = await asyncio.gather(
            *(
                c.post("/v1/auth/token", data=FORM, headers={"DPoP": proof})
                for c in (ca, cb, ca, cb, ca, cb)
            )
        )
        assert sorted(r.status_code for r in answers) == [200, 400, 400, 400, 400, 400]
        if settings.redis_dsn is not None:
            # on Redis, not in the database; with an expiry no longer than the window
            async with svc_of(a).db.read() as conn:
                rows = (await conn.execute(select(func.count()).select_from(dpop_proofs))).scalar()
            assert rows == 0
            keys = [k async for k in svc_of(a).redis.scan_iter(PREFIX + "*")]
            assert len(keys) == 2
            for key in keys:
                assert 0 < await svc_of(a).redis.ttl(key) <= REPLAY_TTL_SECONDS


async def test_the_database_cache_forgets_expired_proofs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upkeep sweeps proofs too old to be accepted; nothing else of them is kept."""
    from service import create_app, health

    monkeypatch.setattr(health, "READY_SECONDS", 0.05)
    monkeypatch.setattr(health, "PURGE_SECONDS", 0.0)
    app = create_app(settings)
    async with app.test_app():
        cache = svc_of(app).replays
        assert await cache.first_use("k:old", 0)  # expires at once
        assert await cache.first_use("k:new", REPLAY_TTL_SECONDS)
        assert not await cache.first_use("k:new", REPLAY_TTL_SECONDS)
        db = svc_of(app).db
        deadline = time.monotonic() + 10
        while True:
            async with db.read() as conn:
                left = (await conn.execute(select(dpop_proofs.c.key_hash))).scalars().all()
            if len(left) == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert len(left) == 1  # k:old is gone, k:new stays for its window


async def test_proofs_arriving_together_share_one_insert(settings: Settings) -> None:
    """Group commit: proofs that wait together go to the database in one statement, and
    each still gets the database's own answer."""
    from service import create_app

    app = create_app(settings)
    async with app.test_app():
        db = svc_of(app).db
        inserts: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO DPOP_PROOFS"):
                inserts.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        cache = ReplayCache(db, None)
        assert await cache.first_use("seen:before", REPLAY_TTL_SECONDS)
        inserts.clear()
        keys = [f"burst:{n}" for n in range(50)]
        answers = await asyncio.gather(
            *(cache.first_use(k, REPLAY_TTL_SECONDS) for k in [*keys, keys[0], "seen:before"])
        )
        assert answers == [True] * 50 + [False, False]
        assert 1 <= len(inserts) <= 2, len(inserts)
        # more than one statement's worth: every proof still counted exactly once
        many = [f"many:{n}" for n in range(1_200)]
        answers = await asyncio.gather(
            *(cache.first_use(k, REPLAY_TTL_SECONDS) for k in [*many, *many[:3]])
        )
        assert answers.count(True) == 1_200 and answers[-3:] == [False] * 3
        async with db.read() as conn:
            rows = (await conn.execute(select(func.count()).select_from(dpop_proofs))).scalar()
        assert rows == 1 + 50 + 1_200
        # a request given up while its proof waits does not stop the others' batch
        waiting = asyncio.ensure_future(cache.first_use("given:up", REPLAY_TTL_SECONDS))
        others = [asyncio.ensure_future(cache.first_use(f"late:{n}", 60)) for n in range(5)]
        await asyncio.sleep(0)  # every one of them is waiting for the batch now
        waiting.cancel()
        assert await asyncio.gather(*others) == [True] * 5
        assert not await cache.first_use("given:up", REPLAY_TTL_SECONDS)  # it was written


@contextlib.asynccontextmanager
async def app_behind_a_proxy(
    settings_factory: SettingsFactory, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Quart, TcpProxy]]:
    """The app on PostgreSQL through a TCP proxy the test can cut or hang (run once: on
    the plain PostgreSQL parameter of `backend`)."""
    from service import create_app

    if request.node.callspec.params["backend"] != "postgresql":
        pytest.skip("one run on PostgreSQL, behind a proxy that can cut it, is enough")
    assert PG_URL
    await reset_postgres(PG_URL)
    proxy, dsn = await proxy_for(PG_URL)
    try:
        yield create_app(settings_factory(issuer=ISSUER, database_url=dsn)), proxy
    finally:
        await proxy.stop()


async def test_a_database_outage_answers_every_waiting_proof_503_and_recovers(
    settings_factory: SettingsFactory, holder: Holder, request: pytest.FixtureRequest
) -> None:
    async with app_behind_a_proxy(settings_factory, request) as (app, proxy):
        async with app.test_app(), client_for(app) as c:
            access = (await dpop_login(c, holder))["access_token"]

            def fresh() -> dict[str, str]:
                return {
                    "Authorization": f"DPoP {access}",
                    "DPoP": holder.proof("GET", ME_URL, token=access),
                }

            assert (await c.get("/v1/users/me", headers=fresh())).status_code == 200
            proxy.cut()
            answers = await asyncio.gather(
                *(c.get("/v1/users/me", headers=fresh()) for _ in range(5))
            )
            for r in answers:
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert "Traceback" not in r.text and "asyncpg" not in r.text
            proxy.restore()
            deadline = time.monotonic() + 10
            while True:
                r = await c.get("/v1/users/me", headers=fresh())
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200, r.text


async def test_shutdown_answers_every_proof_waiting_on_a_hung_database(
    settings_factory: SettingsFactory, request: pytest.FixtureRequest
) -> None:
    """A database that hangs at shutdown: every waiting proof is answered 503 within the
    bound, and no proof is taken after close."""
    async with app_behind_a_proxy(settings_factory, request) as (app, proxy):
        async with app.test_app():
            cache = svc_of(app).replays
            assert await cache.first_use("before", REPLAY_TTL_SECONDS)
            proxy.freeze()
            waiting = [
                asyncio.ensure_future(cache.first_use(f"hung:{n}", REPLAY_TTL_SECONDS))
                for n in range(3)
            ]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await cache.close()
            assert time.monotonic() - started < 5
            for answer in waiting:
                with pytest.raises(ServiceUnavailable):
                    await asyncio.wait_for(answer, 5)  # never left waiting
            with pytest.raises(ServiceUnavailable):
                await cache.first_use("after", REPLAY_TTL_SECONDS)
            proxy.thaw()


def served_by(log: Path) -> set[int]:
    pids = set()
    for line in log.read_text().splitlines():
        if '"http.request"' in line and "/v1/auth/token" in line:
            pids.add(json.loads(line)["pid"])
    return pids


@pytest.mark.parametrize(
    "with_redis",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(not REDIS_URL, reason="PORTCULLIS_TEST_REDIS_URL is not set"),
        ),
    ],
)
def test_a_proof_replayed_on_another_worker_is_refused(tmp_path: Path, with_redis: bool) -> None:
    """Two Hypercorn workers, each request on a new connection (the kernel spreads them
    over the workers): a proof is accepted once, whichever worker sees it."""
    env = {"PORTCULLIS_DPOP_NONCE": "false"}
    if with_redis:
        assert REDIS_URL is not None
        asyncio.run(flush_redis(REDIS_URL))
        env["PORTCULLIS_REDIS_URL"] = REDIS_URL
    with run_server(tmp_path, workers=2, env=env) as server:
        token_url = f"{server.url}/v1/auth/token"
        holder = Holder()

        def fresh() -> httpx.Client:
            return httpx.Client(verify=server.ssl_context(), timeout=30)

        with fresh() as c:
            r = c.post(
                f"{server.url}/v1/auth/register", json={"username": "alice", "password": PASSWORD}
            )
            assert r.status_code == 201
        statuses: list[int] = []
        # at least 6 proofs, and on until both workers have answered (the kernel picks
        # the worker of each new connection, so a busy machine may favour one for a while)
        while len(statuses) < 18 or (len(served_by(server.log)) < 2 and len(statuses) < 90):
            proof = holder.proof("POST", token_url)
            for _ in range(3):  # the same proof three times, each on a new connection
                with fresh() as c:
                    statuses.append(
                        c.post(token_url, data=FORM, headers={"DPoP": proof}).status_code
                    )
        assert statuses == [200, 400, 400] * (len(statuses) // 3)
        assert len(served_by(server.log)) == 2, "every request was served by one worker"
