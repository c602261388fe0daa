"""The whole-settings safety check: every unsafe combination at once, one line each,
naming the variable to change (run by `Settings` after its fields are parsed)."""

from __future__ import annotations

from typing import Any

DEFAULT_ISSUER = "https://localhost:8443"


def unsafe_problems(settings: Any) -> list[str]:
    """`settings` is a `config.Settings` (not imported: config imports this module)."""
    problems: list[str] = []
    if "*" in settings.cors_origins and settings.cors_credentials:
        problems.append("PORTCULLIS_CORS_CREDENTIALS: credentials with the origin '*' are refused")
    if settings.env != "production":
        return problems
    if settings.debug:
        problems.append("PORTCULLIS_DEBUG: must be off in production")
    if settings.issuer == DEFAULT_ISSUER:
        problems.append("PORTCULLIS_ISSUER: set it to the public URL in production")
    elif not settings.issuer.startswith("https://"):
        problems.append("PORTCULLIS_ISSUER: must be an https URL in production")
    if "*" in settings.cors_origins:
        problems.append("PORTCULLIS_CORS_ORIGINS: '*' is refused in production")
    return problems
