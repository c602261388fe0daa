"""Benchmarks: JWT algorithm costs, the per-request auth and rate-limit path, and an
end-to-end load against a real Hypercorn server on loopback (bounded in time)."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from service.security.keys import KeyManager
from service.security.ratelimit import Check, MemoryEngine, RedisEngine
from service.security.tokens import TokenService


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def jwt_algorithms() -> None:
    print("== JWT sign/verify cost per call (joserfc, this machine) ==")
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
    for alg, key in keys:
        header = {"alg": alg, "typ": "at+jwt", "kid": "k"}
        token = jwt.encode(header, claims, key, algorithms=[alg])
        sign = per_call_us(partial(jwt.encode, header, claims, key, algorithms=[alg]), 500)
        verify = per_call_us(partial(jwt.decode, token, key, algorithms=[alg]), 500)
        print(f"{alg:8} sign {sign:7.0f} us   verify {verify:7.0f} us   token {len(token)} bytes")


def request_path(tmp: Path) -> None:
    print("== per-request path ==")
    keys = KeyManager(tmp / "keys.json")
    tokens = TokenService(
        keys, issuer="https://localhost:8443", audience="portcullis", access_ttl=600
    )
    token, _ = tokens.issue(sub="u", client_id="c", scopes=frozenset({"notes:read"}), sid="s")
    verify = per_call_us(partial(tokens.verify, token), 2000)
    print(f"bearer validation (Authlib RFC 9068 + checks): {verify:.0f} us")
    engine = MemoryEngine()
    checks = [Check(key="k", count=10**9, window=60, name="default")]
    print(f"GCRA memory check: {per_call_us(lambda: engine.check(checks), 20000):.1f} us")


async def redis_path() -> None:
    url = os.environ.get("PORTCULLIS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except Exception:
        print(f"GCRA Redis check: skipped ({url} unreachable)")
        return
    engine = RedisEngine(client, prefix="portcullis:bench:")
    checks = [Check(key="k", count=10**9, window=60, name="default")]
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        await engine.check(checks)
    each = (time.perf_counter() - started) / n * 1e6
    print(f"GCRA Redis check (one EVALSHA round trip): {each:.0f} us")
    await client.delete("portcullis:bench:k")
    await client.aclose()


async def load(server_url: str, ca: Path, token: str, seconds: float, concurrency: int) -> None:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(verify=ctx, http2=True, base_url=server_url) as client:
        headers = {"Authorization": f"Bearer {token}"}

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    r = await client.get("/v1/users/me", headers=headers)
                except httpx.TransportError:  # e.g. GOAWAY after keep_alive_max_requests
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if r.status_code != 200:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()

    def p(q: float) -> float:
        return latencies[int(q * (len(latencies) - 1))] * 1000

    print(
        f"GET /v1/users/me over HTTP/2+TLS, {concurrency} streams, {seconds:.0f} s: "
        f"{len(latencies) / seconds:.0f} req/s, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
        f"non-200 {errors}, mean {statistics.fmean(latencies) * 1000:.1f} ms"
    )


def h2load(url: str, token: str | None, seconds: int = 8) -> None:
    """h2load (nghttp2-client), a C load generator, so the client does not starve the
    server of CPU on this 2-core machine: 16 connections x 4 streams (each connection ends
    after 1000 requests, keep_alive_max_requests, and h2load does not reconnect)."""
    command = ["h2load", "-D", str(seconds), "--warm-up-time", "1", "-c", "16", "-m", "4"]
    if token:
        command += ["-H", f"authorization: Bearer {token}"]
    result = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
        [*command, url], capture_output=True, text=True, check=False, timeout=120
    )
    summary = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.startswith(("finished in", "requests:", "status codes:"))
        or line.strip().startswith("time for request:")
    ]
    print(f"  {url.split('/', 3)[-1]:<14} " + " | ".join(summary))


def end_to_end(tmp: Path, label: str, env: dict[str, str], workers: int = 1) -> None:
    from tests.support.server import run_server

    print(f"== end to end: Hypercorn, {workers} worker(s), {label} ==")
    env = {"PORTCULLIS_RATE_LIMIT_DEFAULT": "100000000/minute", **env}
    with run_server(tmp, env=env, workers=workers) as srv:
        import ssl

        ctx = ssl.create_default_context(cafile=str(srv.ca))
        with httpx.Client(verify=ctx, base_url=srv.url) as c:
            password = "Tr0ub4dor&3-horse-staple"  # noqa: S105 - throwaway bench user
            c.post("/v1/auth/register", json={"username": "bench", "password": password})
            token = c.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": "bench", "password": password},
            ).json()["access_token"]
        if shutil.which("h2load"):
            h2load(f"{srv.url}/healthz", None)
            h2load(f"{srv.url}/v1/users/me", token)
        else:
            print("  (h2load not found: apt-get install nghttp2-client; using httpx)")
            asyncio.run(load(srv.url, srv.ca, token, seconds=8, concurrency=32))


def main() -> None:
    jwt_algorithms()
    with tempfile.TemporaryDirectory() as tmp:
        request_path(Path(tmp))
        asyncio.run(redis_path())
        end_to_end(Path(tmp) / "a", "SQLite, in-memory limits", {})
        pg = os.environ.get("PORTCULLIS_BENCH_DATABASE_URL")
        redis = os.environ.get("PORTCULLIS_BENCH_REDIS_URL")
        if pg and redis:
            env = {"PORTCULLIS_DATABASE_URL": pg, "PORTCULLIS_REDIS_URL": redis}
            end_to_end(Path(tmp) / "b", "PostgreSQL + Redis", env, workers=2)


if __name__ == "__main__":
    main()
