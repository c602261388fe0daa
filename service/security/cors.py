"""The CORS policy applied with quart-cors (see CONTRACT.md, "CORS").

quart-cors compares string origins exactly (its regex origins match only at the
start, so none are used); `Settings` accepts only `scheme://host[:port]` origins,
so `null`, other schemes and look-alike hosts can never match.
"""

from __future__ import annotations

CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "X-Request-ID",
)
CORS_EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "X-Request-ID",
)
CORS_MAX_AGE = 600
