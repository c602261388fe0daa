"""Loading settings for entry points: an invalid or unsafe setting stops the process
with one line per problem on stderr, naming the environment variable to change, and exit
status 2, never a traceback."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from .cli_checks import from_env_file, warn_unknown_variables
from .config import Settings


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


def startup_problems(settings: Settings) -> list[str]:
    """What would stop the app from starting with these settings, naming variable and file:
    the data folder must be usable and an existing signing key file readable."""
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


def load_settings_or_exit(*, startup: bool = False) -> Settings:
    """Valid settings, or exit 2 with every problem on stderr. `startup` also checks the
    data folder and the signing key file, as the server needs them."""
    warn_unknown_variables()
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in configuration_problems(exc):
            fail(f"invalid configuration: {from_env_file(line)}")
        raise SystemExit(2) from None
    problems = startup_problems(settings) if startup else []
    for line in problems:
        fail(f"cannot start: {line}")
    if problems:
        raise SystemExit(2)
    return settings
