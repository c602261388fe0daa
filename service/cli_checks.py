"""Configuration help for the first hour: a `PORTCULLIS_*` variable that is no setting
(a typo) gets a warning naming the closest one; a bad value read from `.env` says so;
`check-config --connect` reaches the database and Redis and says which one failed."""

from __future__ import annotations

import asyncio
import difflib
import os
import sys
from collections.abc import Awaitable, Mapping
from typing import Any

from .config import Settings

ENV_FILE = str(Settings.model_config.get("env_file") or ".env")
# Read by the test suite, the benchmark and the deploy kit's balancer, not the service.
_NOT_SETTINGS = (
    "PORTCULLIS_TEST_",
    "PORTCULLIS_BENCH_",
    "PORTCULLIS_LB_",
    "PORTCULLIS_REPLICA_",
    "PORTCULLIS_BACKEND_",
)


def _env_file_values() -> dict[str, str | None]:
    """The `.env` file as pydantic-settings reads it (names lower-cased)."""
    from pydantic_settings import DotEnvSettingsSource

    return dict(DotEnvSettingsSource(Settings).env_vars)


def _say(line: str) -> None:
    sys.stderr.write(f"portcullis: {line}\n")


def _known() -> list[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper() for name in Settings.model_fields]


def unknown_variables(environ: Mapping[str, str], env_file: Mapping[str, object]) -> list[str]:
    """One warning per `PORTCULLIS_*` name that sets nothing, with the closest setting."""
    known = _known()
    warnings = []
    for source, names in (("environment", environ), (ENV_FILE, env_file)):
        for name in sorted(names):
            upper = name.upper()
            if not upper.startswith("PORTCULLIS_") or upper.startswith(_NOT_SETTINGS):
                continue
            if upper in known:
                continue
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{upper} (in the {source}) is not a setting{hint}")
    return warnings


def warn_unknown_variables() -> None:
    for line in unknown_variables(os.environ, _env_file_values()):
        _say(f"warning: {line}")


def from_env_file(problem: str) -> str:
    """`PORTCULLIS_X: message`, saying when the value came from `.env` (not the
    environment, which pydantic-settings prefers)."""
    name, sep, message = problem.partition(": ")
    if not sep or name in os.environ:
        return problem
    if name in {key.upper() for key in _env_file_values()}:
        return f"{name} (read from {ENV_FILE}): {message}"
    return problem


def check_connections(settings: Settings) -> int:
    """Connect to the database and Redis; one line each on stderr; 0 when both work."""
    results = asyncio.run(_connect(settings))
    for _ok, line in results:
        _say(line)
    return 0 if all(ok for ok, _line in results) else 1


async def _connect(settings: Settings) -> list[tuple[bool, str]]:
    from .redisclient import close, make_client
    from .store.db import Database

    db = Database(settings.database_dsn)
    try:
        results = [await _probe("database (PORTCULLIS_DATABASE_URL)", db.ping())]
    finally:
        await db.close()
    if settings.redis_url is None:
        results.append((True, "redis (PORTCULLIS_REDIS_URL): not set, limits are per process"))
        return results
    client = make_client(settings.redis_url.get_secret_value())
    try:
        results.append(await _probe("redis (PORTCULLIS_REDIS_URL)", client.ping()))
    finally:
        await close(client)
    return results


async def _probe(what: str, ping: Awaitable[Any]) -> tuple[bool, str]:
    """(reached, one line): the exception's type only, never its text (it may hold
    the URL and its password)."""
    try:
        await asyncio.wait_for(ping, timeout=5.0)
    except Exception as exc:
        return False, f"{what}: unreachable ({type(exc).__name__})"
    return True, f"{what}: ok"
