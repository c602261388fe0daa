"""Loading settings for entry points: an invalid or unsafe setting stops the process
with one line per problem on stderr, naming the environment variable to change, and exit
status 2, never a traceback."""

from __future__ import annotations

import os
import sys

from pydantic import ValidationError, model_validator

from .cli_checks import from_env_file, warn_unknown_variables
from .config import Settings
from .settings.values import is_dev_certificate


def fail(message: str, code: int = 1) -> int:
    """One line on stderr (the entry points speak before logging exists); the exit code."""
    sys.stderr.write(f"portcullis: {message}\n")
    return code


def variable(field: str) -> str:
    """The environment variable that sets a `Settings` field."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def configuration_problems(error: ValidationError) -> list[str]:
    """One line per problem, each starting with the variable at fault; no input values,
    which may be secrets."""
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        loc = item["loc"]
        if loc and isinstance(loc[0], str) and loc[0] in Settings.model_fields:
            lines.append(f"{variable(loc[0])}: {message}")
        else:  # whole-model checks name their variables themselves, one per line
            lines.extend(line for line in message.splitlines() if line.strip())
    return lines


def serving_problems(settings: Settings) -> list[str]:
    """What the server refuses in production before it starts, naming the variable: the
    development certificate, and on a shared PostgreSQL a missing signing key file (each
    replica would make its own, and tokens would fail across replicas). Only `serve` and
    `check-config` ask: `migrate`, `keys rotate` and the account commands use neither, and
    run before the key file exists."""
    if settings.env != "production":
        return []
    problems: list[str] = []
    if is_dev_certificate(settings.certfile):
        problems.append(
            f"PORTCULLIS_CERTFILE: {settings.certfile} is the development certificate; "
            "serve a real one and name it here"
        )
    path = settings.keys_file
    if settings.database_dsn.startswith("postgresql") and not os.access(path, os.R_OK):
        problems.append(
            f"PORTCULLIS_SIGNING_KEYS_FILE: {path} is missing or unreadable; replicas "
            "sharing PostgreSQL must all load one key file (create it once with "
            "`portcullis keys rotate --activate-now` and mount it)"
        )
    return problems


def startup_problems(settings: Settings) -> list[str]:
    """What would stop a worker from starting, naming variable and file: the data folder
    must be usable and an existing signing key file readable."""
    problems: list[str] = []
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it is not a folder" if folder.exists() else exc.strerror
        problems.append(f"PORTCULLIS_DATA_DIR: cannot use {folder}: {reason}")
    path = settings.keys_file
    if path.exists():
        from .security.keys import read_keys

        try:
            read_keys(path)
        except OSError as exc:
            problems.append(
                f"signing key file {path} (PORTCULLIS_SIGNING_KEYS_FILE): {exc.strerror}"
            )
        except ValueError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            problems.append(f"signing key file {path} (PORTCULLIS_SIGNING_KEYS_FILE): {reason}")
    return problems


class _ValuesOnly(Settings):
    """The same settings without the unsafe-combination checks (a validator of the same
    name replaces the parent's): only to name the file problems too when those failed."""

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> _ValuesOnly:
        return self


def load_settings_or_exit(*, serving: bool = True, startup: bool = False) -> Settings:
    """Valid settings, or exit 2 with every problem on stderr. `serving` (the server and
    `check-config`) refuses what production must not serve with (`serving_problems`);
    `startup` (each worker) also checks the data folder and the key file. The other
    commands pass `serving=False` and check only what they use themselves."""
    warn_unknown_variables()
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in configuration_problems(exc):
            fail(f"invalid configuration: {from_env_file(line)}")
        if serving:  # every problem at once: the files too, where the values parse
            try:
                files = serving_problems(_ValuesOnly())
            except ValidationError:
                files = []
            for line in files:
                fail(f"invalid configuration: {line}")
        raise SystemExit(2) from None
    problems = (
        [f"invalid configuration: {p}" for p in serving_problems(settings)] if serving else []
    )
    problems += [f"cannot start: {p}" for p in startup_problems(settings)] if startup else []
    for line in problems:
        fail(line)
    if problems:
        raise SystemExit(2)
    return settings
