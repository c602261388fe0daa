"""Shared field types: clean text, timestamps, opaque cursors, pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
T = TypeVar("T")


def _clean_text(value: str) -> str:
    """Reject NUL and control characters (newline and tab allowed) and lone surrogates."""
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("invalid Unicode (lone surrogate)") from None
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]


class StrictIn(BaseModel):
    """Base of every request body: unknown fields are rejected, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """Decode an opaque cursor; ValueError on anything that is not ours."""
    if len(cursor) > 200:
        raise ValueError("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        raise ValueError("invalid cursor") from None
    if (
        not isinstance(parts, list)
        or len(parts) != len(kinds)
        or not all(type(p) is k for p, k in zip(parts, kinds, strict=True))
    ):
        raise ValueError("invalid cursor")
    return tuple(parts)


class PageQuery(BaseModel):
    """`limit` 1..100 (default 20) and an opaque `cursor`; other parameters ignored."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, AfterValidator(_clean_text)] | None = Field(default=None, max_length=200)


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None
