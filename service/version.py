"""The service's version: the installed distribution's (pyproject.toml), read once, never
a copy of it (`--version`, the OpenAPI document)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def package_version() -> str:
    try:
        return version("portcullis")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
