"""Costs of single components, measured in-process: JWT algorithms, bearer validation and
the GCRA check (in memory, and in Redis when PORTCULLIS_BENCH_REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def jwt_algorithms(n: int) -> dict[str, dict[str, float]]:
    """Sign and verify cost per call (joserfc) and token size, per algorithm."""
    claims = {
        "iss": "x",
        "sub": "u",
        "aud": "p",
        "exp": int(time.time()) + 600,
        "jti": "j",
        "scope": "notes:read notes:write",
    }
    keys: list[tuple[str, Any]] = [
        ("ES256", ECKey.generate_key("P-256")),
        ("Ed25519", OKPKey.generate_key("Ed25519")),
        ("RS256", RSAKey.generate_key(2048)),
    ]
    out: dict[str, dict[str, float]] = {}
    for alg, key in keys:
        header = {"alg": alg, "typ": "at+jwt", "kid": "k"}
        token = jwt.encode(header, claims, key, algorithms=[alg])
        out[alg] = {
            "sign_us": per_call_us(partial(jwt.encode, header, claims, key, algorithms=[alg]), n),
            "verify_us": per_call_us(partial(jwt.decode, token, key, algorithms=[alg]), n),
            "token_bytes": len(token),
        }
    return out


def request_path(tmp: Path, n: int) -> dict[str, float]:
    """The service's bearer validation and in-memory GCRA check, per call."""
    from service.security.keys import KeyManager
    from service.security.ratelimit import Check, MemoryEngine
    from service.security.tokens import TokenService

    keys = KeyManager(tmp / "keys.json").open()
    tokens = TokenService(
        keys, issuer="https://localhost:8443", audience="portcullis", access_ttl=600
    )
    token, _ = tokens.issue(sub="u", client_id="c", scopes=frozenset({"notes:read"}), sid="s")
    engine = MemoryEngine()
    checks = [Check(key="k", count=10**9, window=60, name="default")]
    return {
        "bearer_validation_us": per_call_us(partial(tokens.verify, token), n),
        "gcra_memory_us": per_call_us(lambda: engine.check(checks), n * 10),
    }


async def _redis_check(url: str, n: int) -> float | str:
    import redis.asyncio as aioredis

    from service.security.ratelimit import Check, RedisEngine

    client = aioredis.from_url(url, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except Exception:  # any failure means: not measurable here
        return f"skipped ({url.split('@')[-1]} unreachable)"
    try:
        engine = RedisEngine(client, prefix="portcullis:bench:")
        checks = [Check(key="k", count=10**9, window=60, name="default")]
        started = time.perf_counter()
        for _ in range(n):
            await engine.check(checks)
        each = (time.perf_counter() - started) / n * 1e6
        await client.delete("portcullis:bench:k")
        return each
    finally:
        await client.aclose()


def redis_check(n: int) -> float | str:
    url = os.environ.get("PORTCULLIS_BENCH_REDIS_URL")
    if not url:
        return "skipped (PORTCULLIS_BENCH_REDIS_URL not set)"
    return asyncio.run(_redis_check(url, n))


def measure(tmp: Path, *, quick: bool) -> dict[str, Any]:
    n = 200 if quick else 1000
    return {
        "jwt": jwt_algorithms(n),
        **request_path(tmp, n),
        "gcra_redis_us": redis_check(n),
    }


def report(found: dict[str, Any]) -> list[str]:
    lines = ["component costs (in-process, per call):"]
    for alg, c in found["jwt"].items():
        lines.append(
            f"  {alg:8} sign {c['sign_us']:6.0f} us  verify {c['verify_us']:6.0f} us  "
            f"token {c['token_bytes']:.0f} bytes"
        )
    lines.append(f"  bearer validation (RFC 9068 + checks): {found['bearer_validation_us']:.0f} us")
    lines.append(f"  GCRA check in memory: {found['gcra_memory_us']:.1f} us")
    redis = found["gcra_redis_us"]
    redis_text = f"{redis:.0f} us (one EVALSHA round trip)" if isinstance(redis, float) else redis
    lines.append(f"  GCRA check in Redis: {redis_text}")
    return lines
