"""The alert rules and the dashboard against a real Prometheus scraping a real Portcullis.

One Portcullis and one Prometheus (Debian's) serve the whole module. Prometheus scrapes
every second and runs the project's rules with every range and `for` divided by ten (the
same expressions and thresholds). A quiet period with normal traffic fires nothing; a
credential-stuffing attack and a burst of forged tokens fire the matching alerts; and every
panel of the dashboard is valid PromQL that returns data."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.server import Server, run_server
from tools import monitoring

from .prometheus import Prometheus, need, run_prometheus, scaled_rules

pytestmark = pytest.mark.server
SCALE = 10  # 5m windows become 30s, `for: 2m` becomes 12s


@dataclass
class Stack:
    server: Server
    prometheus: Prometheus

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, verify=self.server.ssl_context(), timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need("prometheus")
    folder = tmp_path_factory.mktemp("monitoring")
    env = {
        # The attack comes from one address: keep it unblocked, so the login failures go
        # on (a block refuses before the password check, and blocked requests count not).
        "PORTCULLIS_BLOCK_EXEMPT": "127.0.0.1/32",
        # The forged tokens come from that address too, for as long as the alerts take to
        # fire (up to two minutes on a busy machine): above the default 1,200 a minute,
        # they would be answered 429 before their signature is checked.
        "PORTCULLIS_RATE_LIMIT_DEFAULT": "100000/minute",
    }
    with run_server(folder / "portcullis", env=env) as server:
        rules = scaled_rules(monitoring.RULES.read_text(), SCALE)
        with run_prometheus(
            folder / "prometheus",
            target=f"localhost:{server.port}",
            ca=server.ca,
            rules=rules,
        ) as prometheus:
            yield Stack(server, prometheus)


def normal_traffic(stack: Stack, seconds: float) -> None:
    """A user who registers, logs in, writes and reads notes, for `seconds`."""
    username = f"user{secrets.token_hex(4)}"
    with stack.client() as client:
        r = client.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r = client.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": username, "password": PASSWORD},
            )
            assert r.status_code == 200, r.text
            auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            for _ in range(5):
                r = client.post(
                    "/v1/notes", json={"title": "t", "body": "", "tags": []}, headers=auth
                )
                assert r.status_code == 201, r.text
                assert client.get("/v1/notes", headers=auth).status_code == 200
                time.sleep(0.2)


def test_a_quiet_period_fires_nothing(stack: Stack) -> None:
    # An alert whose expression turns true shows at once as pending, whatever its `for`:
    # so after a while of normal traffic (the 30 s windows mostly filled) none may show.
    normal_traffic(stack, 25)
    alerts = stack.prometheus.alerts()
    assert alerts == [], alerts
    # The rules are loaded and evaluated (not silently empty): every recording rule has run.
    assert stack.prometheus.query("portcullis:login_failure_ratio:rate5m")


def _forged_tokens(kid: str) -> Iterator[str]:
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    while True:
        header = part({"alg": "ES256", "typ": "at+jwt", "kid": kid})
        claims = part({"sub": secrets.token_hex(8), "scope": "admin"})
        signature = base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode()
        yield f"{header}.{claims}.{signature}"


def test_credential_stuffing_and_forged_tokens_fire_their_alerts(stack: Stack) -> None:
    with stack.client() as client:
        kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    stop = threading.Event()
    counts = {"logins": 0, "forged": 0}

    def stuff() -> None:
        with stack.client() as client:
            while not stop.is_set():
                r = client.post(
                    "/v1/auth/token",
                    data={
                        "grant_type": "password",
                        "username": f"victim{secrets.randbelow(500)}",
                        "password": secrets.token_urlsafe(12),
                    },
                )
                assert r.status_code in (400, 429), r.text
                counts["logins"] += 1

    def forge() -> None:
        tokens = _forged_tokens(kid)
        with stack.client() as client:
            while not stop.is_set():
                r = client.get("/v1/users/me", headers={"Authorization": f"Bearer {next(tokens)}"})
                assert r.status_code == 401
                counts["forged"] += 1
                time.sleep(0.05)

    expected = {"PortcullisCredentialStuffing", "PortcullisTokenForgery"}
    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(stuff) for _ in range(3)] + [pool.submit(forge)]
        try:
            deadline = time.monotonic() + 120
            while not expected <= stack.prometheus.firing():
                assert time.monotonic() < deadline, (counts, stack.prometheus.alerts())
                assert not any(w.done() for w in workers), [w.result() for w in workers]
                time.sleep(1)
        finally:
            stop.set()
        for worker in workers:
            worker.result()
    firing = {
        (a["labels"]["alertname"], a["labels"].get("reason"))
        for a in stack.prometheus.alerts()
        if a["state"] == "firing"
    }
    assert ("PortcullisTokenForgery", "bad_signature") in firing, firing
    # What the attack does not touch stays quiet.
    assert not {"PortcullisDependencyDown", "PortcullisHigh5xxRatio"} & {n for n, _ in firing}


def test_every_dashboard_panel_is_valid_and_returns_data(stack: Stack) -> None:
    normal_traffic(stack, 3)  # fresh latency samples for the quantiles
    model = json.loads(monitoring.DASHBOARD.read_text())
    queries = monitoring.panel_queries(model)
    titles = {title for title, _ in queries}
    for wanted in ("In flight against the cap", "Auth failures by reason", "Key-set mismatch"):
        assert wanted in titles
    empty = []
    for title, expr in queries:
        promql = expr.replace("$__rate_interval", "1m").replace("$job", "portcullis")
        if not stack.prometheus.query(promql):  # an invalid query fails inside query()
            empty.append((title, promql))
    assert not empty, empty
    jobs = stack.prometheus.api(
        "/api/v1/label/job/values", **{"match[]": "portcullis_http_requests_in_flight"}
    )
    assert "portcullis" in jobs


def test_dashboard_json_is_current() -> None:
    assert monitoring.DASHBOARD.read_text() == monitoring.dashboard_text()
    assert monitoring.main(["--check"]) == 0
