"""The command line: migrate, create-user, create-client, keys rotate, check-config."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service import create_app
from service.config import Settings
from service.devcerts import make_dev_certs
from tests.conftest import PASSWORD, PG_URL, bearer, client_for, needs_pg, reset_postgres
from tests.support.cli import run_cli

cli = run_cli


def test_migrate_from_empty_and_again(tmp_path: Path) -> None:
    first = cli(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": [1, 2, 3], "version": 3}
    again = cli(tmp_path, "migrate")
    assert again.returncode == 0 and json.loads(again.stdout) == {"applied": [], "version": 3}


def test_create_user_and_failures(tmp_path: Path) -> None:
    r = cli(
        tmp_path,
        "create-user",
        "admin1",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"id", "username"} and out["username"] == "admin1"
    assert PASSWORD not in r.stdout + r.stderr
    taken = cli(tmp_path, "create-user", "admin1", "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.returncode != 0 and "taken" in taken.stderr and taken.stdout == ""
    weak = cli(tmp_path, "create-user", "weakling", "--password-stdin", stdin="password1234\n")
    assert weak.returncode != 0 and "common" in weak.stderr and "Traceback" not in weak.stderr
    bad_name = cli(tmp_path, "create-user", "Bad Name", "--password-stdin", stdin=PASSWORD + "\n")
    assert bad_name.returncode != 0 and "username" in bad_name.stderr


def test_account_commands_start_only_the_database_and_hasher(tmp_path: Path) -> None:
    """create-user and create-client insert a row: no signing key is made or read, and a
    Redis that cannot be reached does not matter."""
    unreachable = {"PORTCULLIS_REDIS_URL": "redis://127.0.0.1:9/0"}
    r = cli(
        tmp_path, "create-user", "solo", "--password-stdin", stdin=PASSWORD + "\n", **unreachable
    )
    assert r.returncode == 0, r.stderr
    c = cli(tmp_path, "create-client", "etl", "--scope", "notes:read", **unreachable)
    assert c.returncode == 0, c.stderr
    assert not (tmp_path / "keys").exists()


def test_create_client_secret_works_once_shown(tmp_path: Path) -> None:
    r = cli(tmp_path, "create-client", "etl", "--scope", "notes:read notes:write")
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert set(created) == {"client_id", "client_secret"}
    bad = cli(tmp_path, "create-client", "etl", "--scope", "root")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "'root'" in bad.stderr
    assert created["client_secret"] not in (tmp_path / "portcullis.db").read_bytes().decode(
        "latin-1"
    )
    created_out = created
    app = create_app(Settings(_env_file=None, data_dir=tmp_path))

    async def use() -> dict[str, Any]:
        async with app.test_app(), client_for(app) as c:
            r = await c.post(
                "/v1/auth/token",
                data={"grant_type": "client_credentials", **created_out},
            )
            assert r.status_code == 200, r.text
            me = await c.get("/v1/users/me", headers=bearer(r.json()["access_token"]))
            return dict(me.json())

    me = asyncio.run(use())
    assert me == {
        "client_id": created["client_id"],
        "name": "etl",
        "scopes": ["notes:read", "notes:write"],
    }


def test_keys_rotate_keeps_the_previous_public_key(tmp_path: Path) -> None:
    first = cli(tmp_path, "keys", "rotate")
    second = cli(tmp_path, "keys", "rotate")
    assert first.returncode == second.returncode == 0
    keys = json.loads((tmp_path / "keys" / "jwks.json").read_text())["keys"]
    kids = [k["kid"] for k in keys]
    assert kids[-1] == json.loads(second.stdout)["kid"] and json.loads(first.stdout)["kid"] in kids
    assert (tmp_path / "keys" / "jwks.json").stat().st_mode & 0o777 == 0o600
    # never the private key
    assert set(json.loads(second.stdout)) == {"kid", "alg", "activates", "file"}


def test_check_config_redacts_and_refuses(tmp_path: Path) -> None:
    r = cli(
        tmp_path, "check-config", PORTCULLIS_DATABASE_URL="postgresql+asyncpg://u:topsecret@db/x"
    )
    assert r.returncode == 0 and "topsecret" not in r.stdout
    assert json.loads(r.stdout)["database_url"] == "postgresql+asyncpg://u:***@db/x"
    bad = cli(tmp_path, "check-config", PORTCULLIS_RATE_LIMIT_DEFAULT="lots")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr == (
        "portcullis: invalid configuration: PORTCULLIS_RATE_LIMIT_DEFAULT: "
        "invalid rate limit 'lots' (expected e.g. 100/minute)\n"
    )


def test_check_config_shows_the_settings_in_effect(tmp_path: Path) -> None:
    r = cli(tmp_path, "check-config")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["database_url"] == f"sqlite+aiosqlite:///{tmp_path / 'portcullis.db'}"
    assert shown["signing_keys_file"] == str(tmp_path / "keys" / "jwks.json")
    assert "signing_alg" not in shown  # tokens are ES256; the setting did nothing
    assert set(shown) == set(Settings.model_fields)


def test_lower_case_log_level_and_environment_are_accepted(tmp_path: Path) -> None:
    r = cli(tmp_path, "check-config", PORTCULLIS_LOG_LEVEL="info", PORTCULLIS_ENV="Development")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["log_level"] == "INFO"
    assert json.loads(r.stdout)["env"] == "development"
    bad = cli(tmp_path, "check-config", PORTCULLIS_LOG_LEVEL="loud")
    assert bad.returncode == 2
    assert bad.stderr.startswith("portcullis: invalid configuration: PORTCULLIS_LOG_LEVEL: ")


def test_every_production_problem_is_reported_at_once(tmp_path: Path) -> None:
    r = cli(
        tmp_path,
        "check-config",
        PORTCULLIS_ENV="production",
        PORTCULLIS_DEBUG="true",
        PORTCULLIS_ISSUER="http://api.example.com",
        PORTCULLIS_CORS_ORIGINS="*",
        PORTCULLIS_CORS_CREDENTIALS="true",
        PORTCULLIS_CERTFILE=str(tmp_path / "real.pem"),
    )
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    named = [line.split(": ")[2] for line in r.stderr.splitlines()]
    assert named == [
        "PORTCULLIS_CORS_CREDENTIALS",
        "PORTCULLIS_DEBUG",
        "PORTCULLIS_ISSUER",
        "PORTCULLIS_CORS_ORIGINS",
    ]


def test_create_client_names_the_bad_scope_and_the_allowed_ones(tmp_path: Path) -> None:
    bad = cli(tmp_path, "create-client", "etl", "--scope", "notes:read root")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (
        "portcullis: invalid --scope: unknown scope 'root'; "
        "allowed: admin, notes:read, notes:write\n"
    )
    empty = cli(tmp_path, "create-client", "etl", "--scope", " ")
    assert empty.returncode == 1 and "no scope given" in empty.stderr
    twice = cli(tmp_path, "create-client", "etl", "--scope", "admin admin")
    assert twice.stderr == "portcullis: invalid client: --scope: scopes must be unique\n"


@pytest.mark.parametrize("args", [["create-user", "x"], ["nonsense"], []])
def test_usage_errors(tmp_path: Path, args: list[str]) -> None:
    r = cli(tmp_path, *args)
    assert r.returncode == 2 and "usage" in r.stderr


def _fresh_production(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A production replica's settings before its first start: a shared PostgreSQL, a
    real certificate path and a key file that does not exist yet."""
    return {
        "PORTCULLIS_ENV": "production",
        "PORTCULLIS_ISSUER": "https://api.example.com",
        "PORTCULLIS_DATABASE_URL": database_url,
        "PORTCULLIS_CERTFILE": str(tmp_path / "tls" / "server.pem"),
        "PORTCULLIS_SIGNING_KEYS_FILE": str(tmp_path / "volume" / "keys" / "jwks.json"),
    }


@needs_pg
def test_first_run_commands_need_only_what_they_use(tmp_path: Path) -> None:
    """The operator's first run (deploy/README.md): migrate, create the key file, add an
    admin, all before a key file exists; only the server refuses to start without it."""
    assert PG_URL is not None
    asyncio.run(reset_postgres(PG_URL))
    env = _fresh_production(tmp_path, PG_URL)
    keys = Path(env["PORTCULLIS_SIGNING_KEYS_FILE"])
    refused = cli(tmp_path, "check-config", **env)
    assert refused.returncode == 2 and "PORTCULLIS_SIGNING_KEYS_FILE" in refused.stderr
    migrated = cli(tmp_path, "migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
    user = cli(tmp_path, "create-user", "root1", "--password-stdin", stdin=PASSWORD + "\n", **env)
    assert user.returncode == 0, user.stderr
    client = cli(tmp_path, "create-client", "etl", "--scope", "notes:read", **env)
    assert client.returncode == 0, client.stderr
    assert not keys.exists()  # none of them made or needed a key
    rotated = cli(tmp_path, "keys", "rotate", **env)
    assert rotated.returncode == 0, rotated.stderr
    assert keys.stat().st_mode & 0o777 == 0o600
    assert keys.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(rotated.stdout)["file"] == str(keys)
    accepted = cli(tmp_path, "check-config", **env)
    assert accepted.returncode == 0, accepted.stderr


@needs_pg
def test_only_the_server_checks_the_certificate(tmp_path: Path) -> None:
    assert PG_URL is not None
    asyncio.run(reset_postgres(PG_URL))
    dev = make_dev_certs(tmp_path / "certs")
    env = _fresh_production(tmp_path, PG_URL) | {"PORTCULLIS_CERTFILE": str(dev["cert"])}
    assert cli(tmp_path, "keys", "rotate", **env).returncode == 0
    refused = cli(tmp_path, "check-config", **env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "PORTCULLIS_CERTFILE" in refused.stderr and "development" in refused.stderr
    served = subprocess.run(
        [sys.executable, "-c", "import service.asgi"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 2 and "PORTCULLIS_CERTFILE" in served.stderr
    migrated = cli(tmp_path, "migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
