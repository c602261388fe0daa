"""Tracing end to end: a real Portcullis server exports over OTLP/HTTP to a real receiver.

The request's server span continues the caller's W3C trace, has the database, Redis and
Argon2 work as child spans and the security events as span events, and holds no secret;
a collector that never answers slows no request and does not hold up the shutdown."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service import tracing
from tests.conftest import PASSWORD, PG_URL, REDIS_URL, flush_redis, reset_postgres
from tests.support.server import ROOT, Server, run_server

from .otlp_receiver import Span, otlp_receiver

pytestmark = pytest.mark.server
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER
CLIENT_KIND = 3
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}  # ms: spans leave at once in tests


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def forged_token() -> str:
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = part({"alg": "ES256", "typ": "at+jwt", "kid": "forged"})
    claims = part({"sub": "admin", "scope": "admin", "iss": "https://evil.example"})
    return f"{header}.{claims}.{base64.urlsafe_b64encode(os.urandom(64)).rstrip(b'=').decode()}"


def server_span(spans: list[Span], trace_id: str) -> Span:
    found = [s for s in spans if s.trace_id == trace_id and s.kind == SERVER_KIND]
    assert len(found) == 1, found
    return found[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def test_off_without_an_endpoint() -> None:
    assert not tracing.enabled({})
    assert not tracing.enabled({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert not tracing.enabled({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled({**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    assert tracing.configuration_problem({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert tracing.configuration_problem(endpoint) is None


def test_off_imports_no_part_of_the_sdk(tmp_path: Path) -> None:
    """With no endpoint, serving requests loads nothing of OpenTelemetry: the hooks cost a
    module attribute read."""
    script = """
import asyncio, sys
from service import create_app
from service.config import Settings

PARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"

async def main():
    app = create_app(Settings(data_dir=sys.argv[1]))
    async with app.test_app():
        client = app.test_client()
        for path in ("/healthz", "/v1/notes", "/v1/users/me"):
            await client.get(path, headers={"traceparent": PARENT})
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]


@pytest.fixture
def stores() -> dict[str, str]:
    """PostgreSQL and Redis when the test environment has them (CI), else SQLite alone."""
    import asyncio

    env: dict[str, str] = {}
    if PG_URL:
        asyncio.run(reset_postgres(PG_URL))
        env["PORTCULLIS_DATABASE_URL"] = PG_URL
    if REDIS_URL:
        asyncio.run(flush_redis(REDIS_URL))
        env["PORTCULLIS_REDIS_URL"] = REDIS_URL
    return env


def test_a_request_continues_the_callers_trace_with_children_events_and_no_secret(
    tmp_path: Path, stores: dict[str, str]
) -> None:
    with otlp_receiver() as receiver:
        env = {**FAST_EXPORT, **stores, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        # Two workers: each builds its own provider and exporter once it has started.
        with run_server(tmp_path, env=env, workers=2) as server:
            calls = _exercise(server)
            wanted = {t for t, _ in calls.values()}
            spans = receiver.wait_for(
                lambda got: wanted <= {s.trace_id for s in got if s.kind == SERVER_KIND}
            )
            time.sleep(0.5)  # the children of the last request, if in a later batch
            spans = list(receiver.spans)
    # The read: continues the caller's trace and parent, named by method and route.
    trace_id, parent_id = calls["read"]
    read = server_span(spans, trace_id)
    assert read.parent_span_id == parent_id
    assert read.name == "GET /v1/notes"
    assert read.service_name == "portcullis"
    assert read.attributes["http.request.method"] == "GET"
    assert read.attributes["http.route"] == "/v1/notes"
    assert read.attributes["http.response.status_code"] == 200
    assert read.attributes["client.address"] == "127.0.0.1"
    assert read.attributes["url.path"] == "/v1/notes"  # never the query string
    assert read.status_code == 0  # unset: a success
    kids = children(spans, read)
    assert all(k.trace_id == trace_id and k.kind == CLIENT_KIND for k in kids), kids
    database = "postgresql" if PG_URL else "sqlite"
    assert any(k.attributes.get("db.system.name") == database for k in kids), kids
    if REDIS_URL:  # the rate limit's check
        assert any(k.attributes.get("db.system.name") == "redis" for k in kids), kids
    # The write: an INSERT among its children.
    write = server_span(spans, calls["write"][0])
    assert write.name == "POST /v1/notes"
    assert write.attributes["http.response.status_code"] == 201
    operations = {k.attributes.get("db.operation.name") for k in children(spans, write)}
    assert "INSERT" in operations, operations
    # The failed login: Argon2 as its own span, the security event on the server span.
    failed = server_span(spans, calls["failed_login"][0])
    assert failed.name == "POST /v1/auth/token"
    assert "argon2.verify" in {k.name for k in children(spans, failed)}
    assert ("auth.login_failed", {"reason": "bad_password"}) in failed.events
    forged = server_span(spans, calls["forged"][0])
    assert forged.attributes["http.response.status_code"] == 401
    assert [name for name, _ in forged.events] == ["auth.invalid_token"]
    assert forged.events[0][1]["reason"] == "unknown_key"
    reuse = server_span(spans, calls["reuse"][0])
    assert ("auth.refresh_reuse", {"reason": "refresh_token_reused"}) in reuse.events
    # No secret anywhere in what left the process.
    everything = b"".join(receiver.bodies)
    for secret in calls_secrets(calls):
        assert secret.encode() not in everything
    assert b"authorization" not in everything.lower()
    assert b"bearer" not in everything.lower()


_SECRETS: dict[str, str] = {}


def calls_secrets(_calls: object) -> list[str]:
    return list(_SECRETS.values())


def _exercise(server: Server) -> dict[str, tuple[str, str]]:
    """The requests a traced caller makes; returns each one's (trace id, parent span id)."""
    calls: dict[str, tuple[str, str]] = {}

    def traced(name: str) -> dict[str, str]:
        trace_id, parent_id, header = traceparent()
        calls[name] = (trace_id, parent_id)
        return {"traceparent": header, "tracestate": "vendor=opaque"}

    with httpx.Client(base_url=server.url, verify=server.ssl_context(), timeout=30) as client:
        r = client.post("/v1/auth/register", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 201, r.text
        wrong = "Wr0ng-" + secrets.token_urlsafe(12)
        r = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "alice", "password": wrong},
            headers=traced("failed_login"),
        )
        assert r.status_code == 400, r.text
        r = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        access, refresh = r.json()["access_token"], r.json()["refresh_token"]
        auth = {"Authorization": f"Bearer {access}"}
        r = client.post(
            "/v1/notes",
            json={"title": "t", "body": "b", "tags": []},
            headers={**auth, **traced("write")},
        )
        assert r.status_code == 201, r.text
        query_secret = secrets.token_urlsafe(16)
        r = client.get(
            f"/v1/notes?limit=5&access_token={query_secret}",
            headers={**auth, **traced("read")},
        )
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:  # unknown query parameters refused: read without it
            r = client.get("/v1/notes?limit=5", headers={**auth, **traced("read")})
            assert r.status_code == 200, r.text
        forged = forged_token()
        r = client.get(
            "/v1/users/me", headers={"Authorization": f"Bearer {forged}", **traced("forged")}
        )
        assert r.status_code == 401
        first = {"grant_type": "refresh_token", "refresh_token": refresh}
        assert client.post("/v1/auth/token", data=first).status_code == 200
        r = client.post("/v1/auth/token", data=first, headers=traced("reuse"))
        assert r.status_code == 400
    _SECRETS.update(
        password=PASSWORD,
        wrong=wrong,
        access=access,
        refresh=refresh,
        forged=forged,
        query=query_secret,
    )
    return calls


class _SilentCollector:
    """Accepts connections and never answers: the slowest collector there is."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def test_a_collector_that_never_answers_slows_no_request(tmp_path: Path) -> None:
    collector = _SilentCollector()
    env = {
        **FAST_EXPORT,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",  # each export hangs this long
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",  # and the queue fills, then drops
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
        "PORTCULLIS_DRAIN_SECONDS": "1",
        "PORTCULLIS_BLOCK_EXEMPT": "127.0.0.1/32",  # 100 401s would block the caller
    }
    try:
        with run_server(tmp_path, env=env) as server:
            with httpx.Client(
                base_url=server.url, verify=server.ssl_context(), timeout=30
            ) as client:
                slowest = 0.0
                for _ in range(100):  # more spans than the queue holds
                    started = time.monotonic()
                    r = client.get("/v1/notes", headers={"traceparent": traceparent()[2]})
                    assert r.status_code == 401
                    slowest = max(slowest, time.monotonic() - started)
            # A request waiting on an export would take the exporter's 5 s timeout.
            assert slowest < 4.0, slowest
            started = time.monotonic()
            assert server.stop(signal.SIGTERM, timeout=30) == 0
            # drain (1 s) + the bounded flush (at most the drain time, plus 1 s) + start-stop
            assert time.monotonic() - started < 15, server.log.read_text()[-2000:]
    finally:
        collector.close()
