"""External token issuers (`PORTCULLIS_TRUSTED_ISSUERS`): their key sets, and validation
of the access tokens they sign (the file's entries are `models.issuers.IssuerConfig`).

The unverified `iss` only chooses which configured issuer to try. A key is never taken
from the token (`jku`, `x5u`, `jwk`, `x5c` are refused); `kid` only picks among the keys
fetched from that issuer's JWKS (configured, or discovered from its metadata on the same
origin), over HTTPS only, with a timeout, a size bound and same-origin redirects only.

Keys are cached per issuer and refreshed in the background (Cache-Control `max-age`,
kept within 1 minute..1 day; 5 minutes without one). While the provider is unreachable,
the cached keys keep working. An unknown `kid` may trigger one refresh per issuer every
30 s, awaited for at most a few seconds: the only time a request waits on the network,
so a flood of made-up `kid`s never becomes a flood of fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..logging import get_logger
from ..metrics import Metrics
from ..models.issuers import IssuerConfig
from ..models.users import ROLE_SCOPES

log = get_logger("portcullis.issuers")

FORCED_REFRESH_SECONDS = 30.0  # at most one kid-triggered refresh per issuer this often
FETCH_TIMEOUT_SECONDS = 5.0
FORCED_WAIT_SECONDS = 3.0  # what a request waits at most for that refresh
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MIN_CACHE_SECONDS, MAX_CACHE_SECONDS, DEFAULT_CACHE_SECONDS = 60, 86400, 300
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_FOREIGN_KEY_HEADERS = ("jku", "x5u", "jwk", "x5c")
_DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


def external_subject(issuer: str, sub: str) -> str:
    """The principal key of an external subject: never equal to a local id (UUIDs) or
    to the same `sub` from another issuer, and short enough for every owner column."""
    digest = hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:32]
    return f"ext:{digest}"


class FetchError(Exception):
    """A key or metadata document could not be fetched; the message is safe to log."""


def _origin(url: str) -> tuple[str, str, int | None]:
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

        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            if _origin(url) != origin or origin[0] != "https":
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
                    cache = _cache_seconds(response.headers.get("cache-control", ""))
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


def _cache_seconds(cache_control: str) -> int:
    match = _MAX_AGE.search(cache_control)
    seconds = int(match.group(1)) if match else DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, seconds))


@dataclass(frozen=True)
class KeyCache:
    """One fetched key set: swapped whole on refresh."""

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
        self.cache: KeyCache | None = None
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
            if _origin(uri) != _origin(self.config.issuer):
                failure = "discovered jwks_uri is on another origin"
                continue
            return uri
        raise FetchError(failure)

    async def refresh(self) -> bool:
        """Fetch the key set now; keep the cached one on failure. True on success."""
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
            self.cache = KeyCache(
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
        """Background upkeep: refresh when the cache expires; back off on failure."""
        backoff = 5.0
        while True:
            if await self.refresh() and self.cache is not None:
                backoff = 5.0
                await asyncio.sleep(max(1.0, self.cache.expires - time.monotonic()))
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def key_set_for(self, kid: str | None) -> KeySet | None:
        """The key set holding `kid`: refreshes once per FORCED_REFRESH_SECONDS at most."""
        cache = self.cache
        if cache is not None and (kid is None or kid in cache.kids):
            return cache.keys
        now = time.monotonic()
        if now - self._last_forced < FORCED_REFRESH_SECONDS:
            return None
        self._last_forced = now
        self.forced = asyncio.create_task(self.refresh(), name="portcullis-issuer-refresh")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.forced), FORCED_WAIT_SECONDS)
        cache = self.cache
        if cache is not None and (kid is None or kid in cache.kids):
            return cache.keys
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


@dataclass(frozen=True)
class ExternalClaims:
    """What an external token says, once verified."""

    issuer: str
    subject: str  # the principal key: external_subject(issuer, sub)
    sub: str
    client_id: str
    scopes: frozenset[str]
    role: str
    jti: str
    exp: int


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def verify_external(keys: IssuerKeys, token: str, header: dict[str, Any]) -> ExternalClaims:
    """Verify a token whose unverified `iss` named this issuer; raise Rejected."""
    config = keys.config
    if any(name in header for name in _FOREIGN_KEY_HEADERS):
        raise Rejected("bad_header")
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise Rejected("bad_algorithm")
    typ = header.get("typ")
    if config.require_typ is not None and (
        not isinstance(typ, str)
        or typ.lower().removeprefix("application/") != config.require_typ.lower()
    ):
        raise Rejected("bad_type")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Rejected("unknown_key")
    key_set = await keys.key_set_for(kid)
    if key_set is None:
        raise Rejected("unknown_key")
    try:
        decoded = jwt.decode(token, key_set, algorithms=list(config.algorithms))
        registry = jwt.JWTClaimsRegistry(
            leeway=config.leeway,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except JoseError as exc:
        from .tokens import jose_reason

        raise Rejected(jose_reason(exc)) from None
    except (ValueError, TypeError, KeyError):
        raise Rejected("malformed") from None
    claims = decoded.claims
    now = int(time.time())
    iat = claims.get("iat")
    if config.max_token_age is not None:
        if not isinstance(iat, int) or now - iat > config.max_token_age + config.leeway:
            raise Rejected("too_old")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Rejected("invalid_claim")
    roles = _strings(_claim(claims, config.roles_claim)) if config.roles_claim else []
    role = "admin" if set(roles) & set(config.admin_roles) else "user"
    # The token's scopes, never beyond what the role may hold; the mapped admin role is
    # what admin routes need (providers rarely put our `admin` scope in their tokens).
    scopes = frozenset(_strings(claims.get(config.scope_claim))) & ROLE_SCOPES[role]
    if role == "admin":
        scopes |= {"admin"}
    client_id = claims.get("client_id") or claims.get("azp") or claims["sub"]
    jti = claims.get("jti") or claims.get("uti") or hashlib.sha256(token.encode()).hexdigest()
    return ExternalClaims(
        issuer=config.issuer,
        subject=external_subject(config.issuer, claims["sub"]),
        sub=claims["sub"],
        client_id=str(client_id),
        scopes=scopes,
        role=role,
        jti=str(jti),
        exp=int(claims["exp"]),
    )


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
