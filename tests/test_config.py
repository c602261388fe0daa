"""Settings: parsing, derived values, and refusal of unsafe combinations."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Limit, Settings, parse_limits


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_match_the_contract() -> None:
    s = make()
    assert s.env == "development" and s.issuer == "https://localhost:8443"
    assert s.audience == "portcullis" and s.access_token_ttl == 600
    assert s.refresh_token_ttl == 1209600 and s.max_body_bytes == 65536
    assert s.max_inflight == 512 and s.cors_origins == [] and s.trusted_proxies == []
    assert s.limits("default") == (Limit(1200, 60),)
    assert s.limits("token") == (Limit(20, 60),) and s.limits("register") == (Limit(10, 3600),)
    assert s.database_dsn == "sqlite+aiosqlite:///var/portcullis.db"
    assert s.keys_file == Path("var/keys/jwks.json")
    assert ipaddress.ip_address("127.0.0.1") in s.metrics_allow[0]


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_CORS_ORIGINS", "https://a.example, https://b.example:8443")
    monkeypatch.setenv("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8,::1")
    monkeypatch.setenv("PORTCULLIS_RATE_LIMIT_DEFAULT", "100/hour;10/minute")
    s = Settings(_env_file=None)
    assert s.cors_origins == ["https://a.example", "https://b.example:8443"]
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert s.limits("default") == (Limit(100, 3600), Limit(10, 60))


@pytest.mark.parametrize("text", ["", "ten/minute", "0/minute", "5/fortnight", "5"])
def test_bad_limits_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_limits(text)


@pytest.mark.parametrize(
    "values",
    [
        {"cors_origins": "*", "cors_credentials": True},
        {"cors_origins": "null"},
        {"cors_origins": "https://a.example/path"},
        {"cors_origins": "ftp://a.example"},
        {"trusted_proxies": "not-a-network"},
        {"issuer": "javascript:alert(1)"},
        {"access_token_ttl": 5},
        {"max_body_bytes": 10},
        {"argon2_memory_kib": 1024},
    ],
)
def test_invalid_values_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make(**values)


def test_production_refuses_unsafe_settings(tmp_path: Path) -> None:
    safe = {
        "env": "production",
        "issuer": "https://api.example.com",
        "certfile": tmp_path / "x.pem",
    }
    make(**safe)
    for change in (
        {"debug": True},
        {"issuer": "https://localhost:8443"},
        {"issuer": "http://api.example.com"},
        {"cors_origins": "*"},
    ):
        with pytest.raises(ValidationError):
            make(**(safe | change))


def test_database_and_redis_urls() -> None:
    assert (
        make(database_url="postgresql://u:p@db/x").database_dsn == "postgresql+asyncpg://u:p@db/x"
    )
    assert make(database_url="postgres://db/x").database_dsn == "postgresql+asyncpg://db/x"
    assert make(database_url="sqlite:///tmp/x.db").database_dsn == "sqlite+aiosqlite:///tmp/x.db"
    for bad in ("mysql://db/x", "postgresql+psycopg2://db/x", "http://db"):
        with pytest.raises(ValidationError):
            make(database_url=bad)
    assert make(redis_url="redis://cache:6379/0").redis_dsn == "redis://cache:6379/0"
    with pytest.raises(ValidationError):
        make(redis_url="memcached://cache")


def test_redacted_hides_secrets() -> None:
    s = make(
        database_url="postgresql+asyncpg://app:hunter2-secret@db:5432/app",
        redis_url="redis://:redis-secret@cache:6379/0",
    )
    text = str(s.redacted())
    assert "hunter2-secret" not in text and "redis-secret" not in text
    assert "postgresql+asyncpg://app:***@db:5432/app" in text


def test_unsafe_production_start_is_one_line_without_traceback(tmp_path: Path) -> None:
    env = {
        "PORTCULLIS_ENV": "production",
        "PATH": "/usr/bin:/bin",
        "PORTCULLIS_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", "import service.asgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "PORTCULLIS_ISSUER" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "service", "check-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
