"""SIGTERM drains before it stops: readiness fails at once, requests are still served
for PORTCULLIS_DRAIN_SECONDS, then Hypercorn's graceful stop and exit 0."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import run_server

pytestmark = pytest.mark.server


@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_turns_readiness_off_and_keeps_serving(tmp_path: Path, workers: int) -> None:
    env = {"PORTCULLIS_DRAIN_SECONDS": "3"}
    with run_server(tmp_path, workers=workers, env=env) as srv:
        with httpx.Client(verify=srv.ssl_context(), base_url=srv.url) as client:
            assert client.get("/readyz").json()["status"] == "ready"
        srv.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        readiness: list[httpx.Response] = []
        served: list[int] = []
        while time.monotonic() - signalled < 2.0:  # well inside the 3 s drain
            # a new connection each time, as a balancer's health check and new clients make
            with httpx.Client(verify=srv.ssl_context(), base_url=srv.url) as fresh:
                readiness.append(fresh.get("/readyz"))
                served.append(fresh.get("/healthz").status_code)
            time.sleep(0.1)
        assert srv.process.poll() is None, "the server stopped before its drain ended"
        assert served and set(served) == {200}, served
        late = readiness[-5:]
        assert late and all(r.status_code == 503 for r in late), [r.status_code for r in late]
        assert late[-1].json()["checks"]["server"] == "draining"
        assert late[-1].headers["retry-after"]
        assert srv.process.wait(timeout=30) == 0
        assert time.monotonic() - signalled >= 3.0
    events = [json.loads(x)["event"] for x in srv.log.read_text().splitlines() if x.startswith("{")]
    assert "server.draining" in events and "server.drained" in events
