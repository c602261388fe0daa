"""Rate-limit text (`100/hour;10/minute`) parsed into limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Limit:
    """`count` requests per `window` seconds."""

    count: int
    window: int


def parse_limits(text: str) -> tuple[Limit, ...]:
    """Parse `100/hour;10/minute` (also `5/10 seconds`) into limits."""
    limits = []
    for part in text.split(";"):
        if not part.strip():
            continue
        match = _LIMIT_RE.match(part)
        if match is None:
            raise ValueError(f"invalid rate limit {part.strip()!r} (expected e.g. 100/minute)")
        count = int(match.group(1))
        multiplier = int(match.group(2) or 1)
        if count < 1 or multiplier < 1:
            raise ValueError(f"invalid rate limit {part.strip()!r}: must be positive")
        limits.append(Limit(count, multiplier * _UNITS[match.group(3)]))
    if not limits:
        raise ValueError("at least one rate limit is required")
    return tuple(limits)
