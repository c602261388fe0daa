"""The registry of upstream Hypercorn functions the patches replace or wrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Replaced:
    """An upstream function as installed (captured before patching) and the SHA-256 of the
    source the patch was written against."""

    name: str
    original: Callable[..., Any]
    sha256: str


UPSTREAM: list[Replaced] = []


def replaces(name: str, original: Callable[..., Any], sha256: str) -> Callable[..., Any]:
    """Record `original` (the upstream function of that `name`) with its expected hash."""
    UPSTREAM.append(Replaced(name, original, sha256))
    return original
