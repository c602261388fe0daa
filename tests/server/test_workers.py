"""Several Hypercorn workers: aggregated metrics, per-process limit warning, key
rotation without restart, graceful shutdown, slow clients."""

from __future__ import annotations

import base64
import json
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.metrics import value
from tests.support.server import Server, run_server

pytestmark = pytest.mark.server
PASSWORD = "Tr0ub4dor&3-horse-staple"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("workers"), workers=2) as srv:
        yield srv


def log_records(server: Server) -> list[dict[str, object]]:
    return [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]


def healthz_count(text: str) -> float:
    return value(
        text, "portcullis_http_requests_total", method="GET", route="/healthz", status="200"
    )


def test_metrics_sum_every_worker(two_workers: Server) -> None:
    sent = 0
    pids: set[object] = set()
    for _ in range(20):  # new connections until both workers have answered some
        for _ in range(10):
            with httpx.Client(verify=two_workers.ssl_context(), base_url=two_workers.url) as c:
                assert c.get("/healthz").status_code == 200
                sent += 1
        time.sleep(0.2)
        pids = {r.get("pid") for r in log_records(two_workers) if r.get("route") == "/healthz"}
        if len(pids) >= 2:
            break
    assert len(pids) == 2, "the requests never reached both workers"
    for _ in range(6):  # whichever worker answers the scrape, it sees every request
        with httpx.Client(verify=two_workers.ssl_context(), base_url=two_workers.url) as c:
            assert healthz_count(c.get("/metrics").text) == sent


def test_workers_say_limits_are_per_process_without_redis(two_workers: Server) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        warnings = [r for r in log_records(two_workers) if r["event"] == "ratelimit.per_process"]
        if warnings:
            break
        time.sleep(0.5)
    assert warnings and warnings[0]["level"] == "WARNING" and warnings[0]["workers"] == 2


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_key_rotation_reaches_running_workers(two_workers: Server) -> None:
    """A rotated-in key is in every worker's JWKS before any token is signed with it."""
    with httpx.Client(verify=two_workers.ssl_context(), base_url=two_workers.url) as c:
        c.post("/v1/auth/register", json={"username": "rotator", "password": PASSWORD})
        form = {"grant_type": "password", "username": "rotator", "password": PASSWORD}
        old = c.post("/v1/auth/token", data=form).json()["access_token"]
        old_kids = {k["kid"] for k in c.get("/.well-known/jwks.json").json()["keys"]}
        result = run_cli(
            two_workers.data_dir,
            "keys",
            "rotate",
            PORTCULLIS_ISSUER=two_workers.url,
            PORTCULLIS_KEY_ACTIVATION_SECONDS="6",
        )
        assert result.returncode == 0, result.stderr
        rotated = json.loads(result.stdout)
        new_kid, activates = rotated["kid"], rotated["activates"]
        published: list[bool] = []
        tokens: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # fresh connections: several workers answer
            with httpx.Client(verify=two_workers.ssl_context(), base_url=two_workers.url) as fresh:
                if time.time() < activates - 1:
                    keys = fresh.get("/.well-known/jwks.json").json()["keys"]
                    published.append(new_kid in {k["kid"] for k in keys})
                else:
                    tokens.append(fresh.post("/v1/auth/token", data=form).json()["access_token"])
            if len(tokens) >= 4 and all(_jwt_part(t, 0)["kid"] == new_kid for t in tokens[-4:]):
                break
            time.sleep(0.2)
        assert published[-4:] == [True] * 4, "the new key was not published before activation"
        for token in tokens:
            if _jwt_part(token, 0)["kid"] == new_kid:
                assert _jwt_part(token, 1)["iat"] >= activates  # never signed before activation
        assert all(_jwt_part(t, 0)["kid"] == new_kid for t in tokens[-4:]), "no switch in 60 s"
        keys = {k["kid"] for k in c.get("/.well-known/jwks.json").json()["keys"]}
        assert keys == old_kids | {new_kid}
        # tokens signed by the previous key stay valid until they expire
        assert c.get("/v1/users/me", headers={"Authorization": f"Bearer {old}"}).status_code == 200


def _tls(server: Server) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return server.ssl_context().wrap_socket(raw, server_hostname="localhost")


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    body = json.dumps({"username": "graceful", "password": PASSWORD}).encode()
    with run_server(tmp_path) as srv, _tls(srv) as conn:
        conn.sendall(
            b"POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:10]
        )
        time.sleep(0.5)
        srv.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        conn.sendall(body[10:])
        answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert srv.process.wait(timeout=30) == 0


def test_slow_body_is_cut_off(two_workers: Server) -> None:
    with _tls(two_workers) as conn:
        conn.sendall(
            b"POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        data = b""
        try:
            while chunk := conn.recv(4096):
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        assert time.monotonic() - started < 16
        assert not data.startswith(b"HTTP/1.1 2")


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    with run_server(tmp_path) as srv:
        with httpx.Client(verify=srv.ssl_context(), base_url=srv.url) as c:
            c.post("/v1/auth/register", json={"username": "durable", "password": PASSWORD})
            form = {"grant_type": "password", "username": "durable", "password": PASSWORD}
            token = c.post("/v1/auth/token", data=form).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            created = c.post("/v1/notes", json={"title": "keep me"}, headers=auth)
            assert created.status_code == 201
        srv.kill9()
    with run_server(tmp_path) as again:
        with httpx.Client(verify=again.ssl_context(), base_url=again.url) as c:
            form = {"grant_type": "password", "username": "durable", "password": PASSWORD}
            token = c.post("/v1/auth/token", data=form).json()["access_token"]
            r = c.get(created.headers["location"], headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["title"] == "keep me"
