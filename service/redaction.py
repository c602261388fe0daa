"""Redaction of log values: secret-named fields and secret-looking values (JWTs,
bearer/basic credentials, passwords inside URLs or forms) never reach a log line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|credential|private|"
    r"assertion|signature",
    re.IGNORECASE,
)
# Values that look like secrets wherever they appear: JWTs, bearer/basic credentials,
# passwords inside URLs.
_SECRET_VALUES = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]*@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)((?:password|client_secret|refresh_token|token)=)[^&\s]*"), r"\1" + REDACTED),
)
# Cheap pre-check: a value none of the patterns could match is left alone.
_SUSPECT = re.compile(r"(?i)eyJ|bearer|basic|://|=")


def _suspect(value: str) -> bool:
    """`_SUSPECT.search(value)`, as substring tests when the text is ASCII (where
    ignoring case is lowering it), which is cheaper than the regular expression."""
    if value.isascii():
        low = value.lower()
        return "eyj" in low or "bearer" in low or "basic" in low or "://" in low or "=" in low
    return _SUSPECT.search(value) is not None


_SAFE_KEYS = frozenset({"event", "reason", "token_type_hint", "grant_type"})


def _secret_key(key: str) -> bool:
    return key not in _SAFE_KEYS and _SECRET_KEYS.search(key) is not None


def redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        if not _suspect(value):
            return value
        for pattern, replacement in _SECRET_VALUES:
            value = pattern.sub(replacement, value)
        return value
    if depth > 6:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and _secret_key(key)
                else redact_value(item, depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, depth + 1) for item in value]
    return value
