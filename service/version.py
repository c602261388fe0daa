"""The service's version: the installed distribution's (pyproject.toml), never a copy of
it (`--version`, the app's OpenAPI document). Read where it is used, a few times per
process at most."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("portcullis")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
