"""The kit behind a connection pooler, as deploy/README.md ("Database connections")
documents it: a real PgBouncer from Debian in transaction mode with fewer server
connections than the replicas' pools, and the service's database URL pointing at it with
asyncpg's prepared-statement cache off. Migration, the account commands and a 2-worker
server under a burst of writes must all work, and PostgreSQL must see no more
connections than PgBouncer's pool."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, PG_URL, REDIS_URL, reset_postgres
from tests.support.cli import run_cli
from tests.support.debian import debian_tool
from tests.support.server import free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
POOL = 3  # PgBouncer's server connections: far below 2 workers x (pool + overflow)

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not (PG_URL and REDIS_URL), reason="needs PORTCULLIS_TEST_DATABASE_URL and _REDIS_URL"
    ),
]


@pytest.fixture
def bouncer(tmp_path: Path) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test database; its URL."""
    assert PG_URL is not None
    from sqlalchemy.engine import make_url

    target = make_url(PG_URL)
    folder = Path(f"/tmp/portcullis-pgbouncer-{os.getpid()}")  # noqa: S108 - readable by the pgbouncer user
    folder.mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"portcullis = host={target.host} port={target.port or 5432} "
        f"dbname={target.database} user={target.username}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        "server_reset_query = DISCARD ALL\nserver_reset_query_always = 1\n"
        f"default_pool_size = {POOL}\nmax_client_conn = 500\n"
    )
    config.chmod(0o644)
    # PgBouncer refuses to run as root: -u drops to the database's system user.
    args = [debian_tool("pgbouncer", "pgbouncer"), config.name]
    if os.geteuid() == 0:
        args[1:1] = ["-u", "postgres"]
    log = tmp_path / "pgbouncer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while b"listening on" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield f"postgresql://postgres@127.0.0.1:{port}/portcullis"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


async def _server_connections() -> int:
    import asyncpg  # type: ignore[import-untyped]

    assert PG_URL is not None
    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        database = PG_URL.rsplit("/", 1)[1]
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return count
    finally:
        await conn.close()


def test_the_service_works_through_pgbouncer_in_transaction_mode(
    bouncer: str, tmp_path: Path
) -> None:
    assert PG_URL is not None and REDIS_URL is not None
    asyncio.run(reset_postgres(PG_URL))
    env = {
        "PORTCULLIS_DATABASE_URL": bouncer,
        "PORTCULLIS_DB_PGBOUNCER": "true",
        "PORTCULLIS_REDIS_URL": REDIS_URL,
    }
    data = tmp_path / "var"
    for args, stdin in (
        (("migrate",), ""),
        (("create-user", "writer", "--password-stdin"), PASSWORD + "\n"),
        (("create-client", "etl", "--scope", "notes:read notes:write"), ""),
    ):
        done = run_cli(data, *args, stdin=stdin, **env)
        assert done.returncode == 0, done.stderr
    with run_server(tmp_path, workers=2, env=env) as server:
        base = server.url
        with httpx.Client(verify=server.ssl_context(), timeout=5) as client:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if client.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, server.log.read_text()[-3000:]
                time.sleep(0.3)
            token = client.post(
                f"{base}/v1/auth/token",
                data={"grant_type": "password", "username": "writer", "password": PASSWORD},
            )
            assert token.status_code == 200, token.text
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}

        async def burst() -> list[int]:
            async with httpx.AsyncClient(verify=server.ssl_context(), timeout=30) as client:

                async def one(i: int) -> int:
                    note = {"title": f"pooled {i}", "body": "", "tags": ["pgbouncer"]}
                    r = await client.post(f"{base}/v1/notes", json=note, headers=bearer)
                    if r.status_code == 201:
                        r = await client.get(f"{base}/v1/notes/{r.json()['id']}", headers=bearer)
                    return r.status_code

                return list(await asyncio.gather(*(one(i) for i in range(120))))

        codes = asyncio.run(burst())
        log = server.log.read_text()[-3000:]
        assert set(codes) == {200}, (sorted(set(codes)), log)
        # PostgreSQL saw PgBouncer's pool, not the workers' pools.
        assert asyncio.run(_server_connections()) <= POOL
