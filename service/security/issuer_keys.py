"""Each external issuer's key set: discovered or configured JWKS, kept and refreshed in
the background, and at most one `kid`-triggered refresh per issuer every 30 s.

Each issuer's last fetched key set (`FetchedKeys`, one value, swapped whole) is refreshed
in the background (Cache-Control `max-age`, kept within 1 minute..1 day; 5 minutes
without one). While the provider is unreachable, the last fetched keys keep working. An
unknown `kid` may trigger one refresh per issuer every 30 s, awaited for at most a few
seconds: the only time a request waits on the network, so a flood of made-up `kid`s
never becomes a flood of fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..logging import get_logger
from ..metrics import Metrics
from ..settings.issuers import IssuerConfig
from .issuer_fetch import Fetcher, FetchError, origin

log = get_logger("portcullis.issuers")

FORCED_REFRESH_SECONDS = 30.0  # at most one kid-triggered refresh per issuer this often
FORCED_WAIT_SECONDS = 3.0  # what a request waits at most for that refresh
_DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@dataclass(frozen=True)
class FetchedKeys:
    """One fetched key set: swapped whole on refresh; `expires` says when to fetch again."""

    keys: KeySet
    kids: frozenset[str]
    expires: float  # monotonic


class IssuerKeys:
    """The key set of one issuer, fetched in the background and on unknown `kid`s."""

    def __init__(
        self, config: IssuerConfig, fetcher: Fetcher | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.fetcher = fetcher or Fetcher(config.ca_file)
        self.fetched: FetchedKeys | None = None
        self.state = "pending"  # pending → ok | unavailable
        self.fetches = 0
        self._jwks_uri = config.jwks_uri
        self._last_forced = -FORCED_REFRESH_SECONDS
        self._lock = asyncio.Lock()
        # the kid-triggered refresh outlives the request that waited for it (bounded by the
        # fetch timeout); kept here so shutdown can cancel it
        self.forced: asyncio.Task[bool] | None = None

    async def _discover(self) -> str:
        base = self.config.issuer.rstrip("/")
        failure = "no metadata"
        for suffix in _DISCOVERY:
            try:
                document, _ = await self.fetcher.get_json(base + suffix)
            except FetchError as exc:
                failure = str(exc)
                continue
            uri = document.get("jwks_uri")
            if document.get("issuer") != self.config.issuer or not isinstance(uri, str):
                failure = "metadata for another issuer, or without jwks_uri"
                continue
            if origin(uri) != origin(self.config.issuer):
                failure = "discovered jwks_uri is on another origin"
                continue
            return uri
        raise FetchError(failure)

    async def refresh(self) -> bool:
        """Fetch the key set now; keep the last one on failure. True on success."""
        async with self._lock:
            self.fetches += 1
            try:
                uri = self._jwks_uri or await self._discover()
                self._jwks_uri = uri
                document, cache_seconds = await self.fetcher.get_json(uri)
                keys = _usable_keys(document, self.config.algorithms)
            except (FetchError, ValueError, JoseError) as exc:
                self._set_state("unavailable", reason=str(exc) or type(exc).__name__)
                return False
            self.fetched = FetchedKeys(
                keys=KeySet.import_key_set({"keys": keys}),
                kids=frozenset(str(k["kid"]) for k in keys if "kid" in k),
                expires=time.monotonic() + cache_seconds,
            )
            self._set_state("ok")
            return True

    def _set_state(self, state: str, reason: str = "") -> None:
        if self.metrics is not None:
            self.metrics.issuer_keys_up.labels(self.config.issuer).set(1 if state == "ok" else 0)
        if state == self.state:
            return
        if state == "unavailable":
            log.error("issuer.keys_unavailable", issuer=self.config.issuer, reason=reason)
        elif self.state == "unavailable":
            log.warning("issuer.keys_recovered", issuer=self.config.issuer)
        self.state = state

    async def run(self) -> None:
        """Background upkeep: refresh when the fetched keys expire; back off on failure."""
        backoff = 5.0
        while True:
            if await self.refresh() and self.fetched is not None:
                backoff = 5.0
                await asyncio.sleep(max(1.0, self.fetched.expires - time.monotonic()))
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def key_set_for(self, kid: str | None) -> KeySet | None:
        """The key set holding `kid`: refreshes once per FORCED_REFRESH_SECONDS at most."""
        fetched = self.fetched
        if fetched is not None and (kid is None or kid in fetched.kids):
            return fetched.keys
        now = time.monotonic()
        if now - self._last_forced < FORCED_REFRESH_SECONDS:
            return None
        self._last_forced = now
        self.forced = asyncio.create_task(self.refresh(), name="portcullis-issuer-refresh")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.forced), FORCED_WAIT_SECONDS)
        fetched = self.fetched
        if fetched is not None and (kid is None or kid in fetched.kids):
            return fetched.keys
        return None


def _usable_keys(document: dict[str, Any], algorithms: tuple[str, ...]) -> list[dict[str, Any]]:
    """The signing keys of a JWK Set that fit the allowed algorithms (public members)."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ValueError("no keys")
    usable = []
    for key in keys:
        if not isinstance(key, dict) or key.get("use", "sig") != "sig":
            continue
        if key.get("kty") == "oct":
            continue  # a symmetric key never verifies an external token
        if "alg" in key and key["alg"] not in algorithms:
            continue
        usable.append({k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi")})
    if not usable:
        raise ValueError("no usable signing keys")
    return usable


class ExternalIssuers:
    """Every configured issuer's keys, with their background refresh tasks."""

    def __init__(self, configs: tuple[IssuerConfig, ...], metrics: Metrics | None = None) -> None:
        self.by_issuer = {c.issuer: IssuerKeys(c, metrics=metrics) for c in configs}
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, issuer: Any) -> IssuerKeys | None:
        return self.by_issuer.get(issuer) if isinstance(issuer, str) else None

    def states(self) -> dict[str, str]:
        return {issuer: keys.state for issuer, keys in self.by_issuer.items()}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(keys.run(), name=f"portcullis-issuer-{index}")
            for index, keys in enumerate(self.by_issuer.values())
        ]

    async def stop(self) -> None:
        forced = [k.forced for k in self.by_issuer.values() if k.forced is not None]
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *forced]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        self._tasks = []
        for keys in self.by_issuer.values():
            with contextlib.suppress(Exception):
                await keys.fetcher.close()
