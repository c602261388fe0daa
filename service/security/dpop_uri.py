"""A proof's `htu` and the request's URL compared as RFC 9449 §4.3 asks: both normalised
per RFC 3986 §6.2.2 (syntax- and scheme-based), query and fragment dropped."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def normalise_uri(uri: str) -> str | None:
    """An http(s) URI without query and fragment, normalised per RFC 3986 §6.2.2 and
    RFC 9449 §4.3: scheme and host in lower case, the default port dropped, an empty
    path as `/`, percent-encodings in upper case and unreserved ones decoded."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{_normalise_path(parts.path or '/')}"


def _normalise_path(path: str) -> str:
    def fix(match: re.Match[str]) -> str:
        byte = int(match.group(1), 16)
        return chr(byte) if byte in _UNRESERVED else f"%{byte:02X}"

    return _PERCENT.sub(fix, path)
