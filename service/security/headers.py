"""Security headers added to every response (see CONTRACT.md, "Headers on every response")."""

from __future__ import annotations

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs page loads its self-hosted Swagger UI (no CDN, no inline script).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
HSTS = b"max-age=63072000; includeSubDomains"

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", API_CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_HTTPS = (*_ALWAYS, (b"strict-transport-security", HSTS))


def security_headers(https: bool) -> tuple[tuple[bytes, bytes], ...]:
    """Headers to add unless the response already set them (the docs page sets its CSP)."""
    return _HTTPS if https else _ALWAYS
