"""Loading settings for entry points: an invalid or unsafe setting stops the process
with one line per problem on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from .config import Settings


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"portcullis: invalid configuration: {where}: {message}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
