"""Parsing and checking single setting values: lists, networks, URLs, certificates."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEV_CERT_MARKER = "Portcullis Development"


def split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def plain(value: Any) -> str | None:
    """A secret setting's text, or None when unset or empty."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return None if value is None or value == "" else str(value)


def networks(value: Any) -> Any:
    return [ipaddress.ip_network(item, strict=False) for item in split_csv(value)]


def check_origins(value: Any) -> Any:
    origins = split_csv(value)
    for origin in origins:
        if origin == "*":
            continue
        if not re.fullmatch(
            r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9a-fA-F:]+\](:\d{1,5})?", origin
        ):
            raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port] exactly")
    return origins


def database_driver(value: Any) -> str | None:
    """Pick the async drivers this service ships with; refuse anything else."""
    text = plain(value)
    if text is None:
        return None
    for bare, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if text.startswith(bare):
            text = driver + text[len(bare) :]
    if not text.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError("must be a postgresql:// (asyncpg) or sqlite:// (aiosqlite) URL")
    return text


def redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def is_dev_certificate(path: Path) -> bool:
    """True when `path` is a certificate made by `make certs`."""
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return DEV_CERT_MARKER in cert.issuer.rfc4514_string()
