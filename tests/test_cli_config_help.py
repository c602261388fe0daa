"""Configuration mistakes of the first hour, from the command line: a typo in a
variable's name, a bad value in `.env`, and `check-config --connect` naming which
dependency cannot be reached (never echoing a password)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`portcullis ...` started in `cwd` (where it reads `.env`)."""
    return run_cli(cwd / "var", *args, cwd=cwd, **env)


def test_a_misspelt_variable_names_the_closest_setting(tmp_path: Path) -> None:
    r = run(tmp_path, "check-config", PORTCULLIS_ENVV="production")
    assert r.returncode == 0, r.stderr
    assert "PORTCULLIS_ENVV (in the environment) is not a setting" in r.stderr
    assert "did you mean PORTCULLIS_ENV?" in r.stderr
    (tmp_path / ".env").write_text("PORTCULLIS_ISUER=https://api.example\n")
    r = run(tmp_path, "check-config")
    assert "PORTCULLIS_ISUER (in the .env) is not a setting; did you mean PORTCULLIS_ISSUER?" in (
        r.stderr
    )
    elsewhere = tmp_path / "elsewhere"  # no .env here
    elsewhere.mkdir()
    clean = run(elsewhere, "check-config", PORTCULLIS_TEST_REDIS_URL="redis://x")
    assert clean.returncode == 0 and "warning" not in clean.stderr


def test_a_bad_value_from_dotenv_says_it_came_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORTCULLIS_ACCESS_TOKEN_TTL=ten minutes\n")
    r = run(tmp_path, "check-config")
    assert r.returncode == 2
    assert "PORTCULLIS_ACCESS_TOKEN_TTL (read from .env):" in r.stderr
    assert "Traceback" not in r.stderr
    # the same mistake in the environment (which wins over .env) is not blamed on .env
    r = run(tmp_path, "check-config", PORTCULLIS_ACCESS_TOKEN_TTL="ten")
    assert r.returncode == 2 and "PORTCULLIS_ACCESS_TOKEN_TTL:" in r.stderr
    assert "read from .env" not in r.stderr


def test_check_config_connect_says_which_dependency_failed(tmp_path: Path) -> None:
    r = run(tmp_path, "check-config", "--connect")
    assert r.returncode == 0, r.stderr
    assert "database (PORTCULLIS_DATABASE_URL): ok" in r.stderr
    assert "redis (PORTCULLIS_REDIS_URL): not set" in r.stderr
    r = run(tmp_path, "check-config", "--connect", PORTCULLIS_REDIS_URL="redis://127.0.0.1:9/0")
    assert r.returncode == 1
    assert "database (PORTCULLIS_DATABASE_URL): ok" in r.stderr
    assert "redis (PORTCULLIS_REDIS_URL): unreachable" in r.stderr
    r = run(
        tmp_path,
        "check-config",
        "--connect",
        PORTCULLIS_DATABASE_URL="postgresql+asyncpg://portcullis:hunter2-secret@127.0.0.1:9/p",
    )
    assert r.returncode == 1
    assert "database (PORTCULLIS_DATABASE_URL): unreachable" in r.stderr
    assert "hunter2" not in r.stdout + r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(
    not os.environ.get("PORTCULLIS_TEST_REDIS_URL"), reason="PORTCULLIS_TEST_REDIS_URL is not set"
)
def test_check_config_connect_reaches_a_real_redis(tmp_path: Path) -> None:
    url = os.environ["PORTCULLIS_TEST_REDIS_URL"]
    r = run(tmp_path, "check-config", "--connect", PORTCULLIS_REDIS_URL=url)
    assert r.returncode == 0, r.stderr
    assert "redis (PORTCULLIS_REDIS_URL): ok" in r.stderr
