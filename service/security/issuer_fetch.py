"""Bounded HTTPS GETs of an identity provider's small JSON documents (metadata, JWK Sets):
HTTPS only, a timeout, a size bound, same-origin redirects only, no keep-alive."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

FETCH_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MIN_CACHE_SECONDS, MAX_CACHE_SECONDS, DEFAULT_CACHE_SECONDS = 60, 86400, 300
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class FetchError(Exception):
    """A key or metadata document could not be fetched; the message is safe to log."""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class Fetcher:
    """Bounded HTTPS GETs of small JSON documents for one issuer."""

    def __init__(self, ca_file: Path | None) -> None:
        import httpx

        context = ssl.create_default_context()
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        # No keep-alive: fetches are minutes apart, and an idle TLS connection left in a
        # pool only has to be torn down later (or holds up the provider's restarts).
        self._client = httpx.AsyncClient(
            verify=context,
            timeout=FETCH_TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"Accept": "application/json"},
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def get_json(self, url: str) -> tuple[dict[str, Any], int]:
        """(document, cache seconds) of `url`, following only same-origin redirects."""
        import httpx

        first = origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            if origin(url) != first or first[0] != "https":
                raise FetchError("redirect to another origin refused")
            try:
                async with self._client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise FetchError("document too large")
                    cache = cache_seconds(response.headers.get("cache-control", ""))
            except httpx.HTTPError as exc:
                raise FetchError(type(exc).__name__) from None
            try:
                document = json.loads(body)
            except ValueError:
                raise FetchError("not JSON") from None
            if not isinstance(document, dict):
                raise FetchError("not a JSON object")
            return document, cache
        raise FetchError("too many redirects")

    async def close(self) -> None:
        await self._client.aclose()


def cache_seconds(cache_control: str) -> int:
    match = _MAX_AGE.search(cache_control)
    seconds = int(match.group(1)) if match else DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, seconds))
