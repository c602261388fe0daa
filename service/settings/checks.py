"""The whole-settings safety check: every unsafe combination at once, one line each,
naming the variable to change (run by `Settings` after its fields are parsed)."""

from __future__ import annotations

import os
from typing import Any

from .values import is_dev_certificate

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
    if is_dev_certificate(settings.certfile):
        problems.append(
            f"PORTCULLIS_CERTFILE: {settings.certfile} is the development certificate; "
            "serve a real one and name it here"
        )
    if settings.database_dsn.startswith("postgresql") and not os.access(
        settings.keys_file, os.R_OK
    ):
        # Replicas sharing a database must share keys; each generating its own
        # would make tokens fail across replicas.
        problems.append(
            f"PORTCULLIS_SIGNING_KEYS_FILE: {settings.keys_file} is missing or unreadable; "
            "replicas sharing PostgreSQL must all load one key file (create it once "
            "with `portcullis keys rotate --activate-now` and mount it)"
        )
    return problems
