"""Loading settings for entry points: an invalid or unsafe setting stops the process
with one line per problem on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from .config import Settings


def fail(message: str, code: int = 1) -> int:
    """One line on stderr (the entry points speak before logging exists); the exit code."""
    sys.stderr.write(f"portcullis: {message}\n")
    return code


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            fail(f"invalid configuration: {where}: {message}")
        raise SystemExit(2) from None
