"""Hardening seen through the real server (Hypercorn, two workers, TLS, HTTP/2):
ambiguous credentials, private files, metrics initialised across workers."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.metrics import AUTH_FAILURE_REASONS, RATELIMIT_POLICIES
from tests.support.metrics import Samples, samples
from tests.support.server import Server, run_server

pytestmark = pytest.mark.server
PASSWORD = "Tr0ub4dor&3-horse-staple"
INVALID_REQUEST = 'Bearer realm="portcullis", error="invalid_request"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("hardening"), workers=2) as srv:
        yield srv


def token_for(server: Server, username: str) -> str:
    with httpx.Client(verify=server.ssl_context(), base_url=server.url) as c:
        r = c.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = c.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": PASSWORD},
        )
        return str(r.json()["access_token"])


def scrape(server: Server) -> Samples:
    with httpx.Client(verify=server.ssl_context(), base_url=server.url) as c:
        return samples(c.get("/metrics").text)


@pytest.mark.parametrize("http2", [True, False])
def test_two_authorization_fields_refused(server: Server, http2: bool) -> None:
    token = token_for(server, f"twice{int(http2)}")
    with httpx.Client(verify=server.ssl_context(), http2=http2, base_url=server.url) as c:
        for headers in (
            [("authorization", f"Bearer {token}"), ("authorization", "Bearer forged.a.b")],
            [("authorization", "Bearer forged.a.b"), ("authorization", f"Bearer {token}")],
            [("authorization", f"Bearer {token}, Bearer forged.a.b")],
        ):
            r = c.get("/v1/users/me", headers=headers)
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert r.status_code == 400, r.text
            assert r.headers["www-authenticate"] == INVALID_REQUEST
            assert r.headers["content-type"] == "application/problem+json"
        r = c.get("/v1/users/me", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200


def test_data_directory_is_private(server: Server) -> None:
    token = token_for(server, "files")
    with httpx.Client(verify=server.ssl_context(), base_url=server.url) as c:
        r = c.post("/v1/notes", json={"title": "t"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
    data = server.data_dir
    db = data / "portcullis.db"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), data / "keys" / "jwks.json"]
    folders = [data, data / "keys", data / "run", data / "metrics"]
    folders += [p for p in (data / "metrics").iterdir() if p.is_dir()]
    assert len(folders) >= 5, "no metrics folder of the running server"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in folders:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_initialised_zeros_in_the_aggregated_scrape(server: Server) -> None:
    found = scrape(server)
    for reason in AUTH_FAILURE_REASONS:
        key = ("portcullis_auth_failures_total", (("reason", reason),))
        assert key in found, reason
    for policy in RATELIMIT_POLICIES:
        assert ("portcullis_ratelimit_rejections_total", (("policy", policy),)) in found
    for outcome in ("success", "failure"):
        assert ("portcullis_logins_total", (("outcome", outcome),)) in found
    assert ("portcullis_dependency_up", (("dependency", "database"),)) in found
    assert ("portcullis_dependency_up", (("dependency", "redis"),)) not in found  # no Redis
    key = ("portcullis_auth_failures_total", (("reason", "malformed"),))
    before = found[key]
    sent = 0
    for _ in range(12):  # new connections: both workers answer some
        with httpx.Client(verify=server.ssl_context(), base_url=server.url) as c:
            r = c.get("/v1/users/me", headers={"Authorization": "Bearer a.b.c"})
            assert r.status_code == 401
            sent += 1
    deadline = time.monotonic() + 10
    while True:  # whichever worker answers, the zeros of the other add nothing
        found = scrape(server)
        if found[key] == before + sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found[key] == before + sent
    assert found[("portcullis_auth_failures_total", (("reason", "expired"),))] == 0
    while found[("portcullis_dependency_up", (("dependency", "database"),))] != 1:
        assert time.monotonic() < deadline, "the database never reported up"
        time.sleep(0.5)
        found = scrape(server)
