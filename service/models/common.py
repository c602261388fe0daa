"""Shared field types: clean text, timestamps, opaque cursors, pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
T = TypeVar("T")


def normalise_text(value: Any) -> Any:
    """Line ends (CRLF, CR → LF) and Unicode (NFC), before lengths are checked."""
    if not isinstance(value, str):
        return value  # strict validation reports the wrong type
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", value)  # lone surrogates pass: _clean_text refuses


def _clean_text(value: str) -> str:
    """Reject NUL, other control characters (newline and tab allowed), lone surrogates."""
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("invalid Unicode (lone surrogate)") from None
    return value


def _length(low: int, high: int) -> AfterValidator:
    """Lengths hold for the stored (normalised) text too: NFC can lengthen a string."""

    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low} to {high} characters long")
        return value

    return AfterValidator(check)


# Bounded text: Field documents the bounds (and stops huge input early); _length checks
# the normalised value that is stored.
_N, _C = BeforeValidator(normalise_text), AfterValidator(_clean_text)
Title = Annotated[str, _N, Field(min_length=1, max_length=200), _C, _length(1, 200)]
Body = Annotated[str, _N, Field(max_length=10000), _C, _length(0, 10000)]
Name = Annotated[str, _N, Field(min_length=1, max_length=100), _C, _length(1, 100)]
Secret = Annotated[str, _N, Field(min_length=1, max_length=1024), _C, _length(1, 1024)]
# Output fields, typed for the document (generated clients get typed ids and dates).
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class StrictIn(BaseModel):
    """Base of every request body: unknown fields are rejected, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


CURSOR_INT_MAX = 2**63 - 1  # every integer a cursor carries is a BIGINT column value
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CURSOR_TEXT = re.compile(r"[\x21-\x7e]{1,64}")  # ids and addresses: visible ASCII


def encode_cursor(*parts: int | str) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_part(value: object, kind: type) -> bool:
    if type(value) is not kind:  # bool is not int; floats, NaN, lists, objects refused
        return False
    if isinstance(value, int):
        return 0 <= value <= CURSOR_INT_MAX
    return isinstance(value, str) and _CURSOR_TEXT.fullmatch(value) is not None


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """Decode a cursor this service issued; ValueError on anything else.

    Only the exact text `encode_cursor` produces is accepted (canonical base64url of
    compact JSON, re-encoded and compared), with `len(kinds)` parts of those types:
    integers in 0..2^63-1 (so no database sees an out-of-range value) and strings of
    1..64 visible ASCII characters (no NUL, no lone surrogate).
    """
    if not _CURSOR.fullmatch(cursor):
        raise ValueError("invalid cursor")
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValueError("invalid cursor") from None
    if (
        not isinstance(parts, list)
        or len(parts) != len(kinds)
        or not all(_cursor_part(p, k) for p, k in zip(parts, kinds, strict=True))
        or encode_cursor(*parts) != cursor
    ):
        raise ValueError("invalid cursor")
    return tuple(parts)


class PageQuery(BaseModel):
    """`limit` 1..100 (default 20) and an opaque `cursor`; other parameters ignored.
    The cursor is checked by `decode_cursor` (400 when it is not one we issued)."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None
