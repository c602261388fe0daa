"""The OpenAPI document checked against the live service by schemathesis: every answer
to generated input (valid and invalid, with an admin token and without) is a status the
document lists for that operation, and none is a 5xx. Bounded to a few minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.server import ROOT, Server, run_server

pytestmark = pytest.mark.server
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Each run's whole budget, fuzzing and stateful sequences included: a few minutes in all.
AS_ADMIN_SECONDS, ANONYMOUS_SECONDS = 90, 40
CREATE_ADMIN = (sys.executable, "-m", "service", "create-user")
SEED = 20261207  # the same cases on every run: a failure here is reproducible


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    generous = "100000/minute"
    env = {
        "PORTCULLIS_RATE_LIMIT_DEFAULT": generous,
        "PORTCULLIS_RATE_LIMIT_OPENAPI": generous,
        "PORTCULLIS_RATE_LIMIT_LOGIN": "100000/minute;1000000/hour",
        "PORTCULLIS_BLOCK_AFTER": "1000000/minute",
        "PORTCULLIS_LOG_LEVEL": "WARNING",
    }
    with run_server(tmp_path_factory.mktemp("fuzz"), env=env) as srv:
        yield srv


def admin_token(server: Server) -> str:
    subprocess.run(
        [*CREATE_ADMIN, "fuzzadmin", "--role", "admin", "--password-stdin"],
        input=PASSWORD.encode() + b"\n",
        env={"PATH": "/usr/bin:/bin", "PORTCULLIS_DATA_DIR": str(server.data_dir)},
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with httpx.Client(base_url=server.url, verify=server.ssl_context()) as client:
        r = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "fuzzadmin", "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def run_schemathesis(server: Server, tmp: Path, budget: int, *extra: str) -> list[str]:
    """Run schemathesis; the failures it reports (none when it passed)."""
    report = tmp / "report.json"
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--tls-verify",
            str(server.ca),
            "--workers",
            "1",
            "--max-time",
            str(budget),
            "--max-examples",
            "30",
            "--seed",
            str(SEED),
            "--request-timeout",
            "10",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            *extra,
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=budget + 120,
    )
    if result.returncode == 0:
        return []
    return [result.stdout[-8000:], result.stderr[-2000:]]


def test_no_undocumented_status_and_no_5xx(server: Server, tmp_path: Path) -> None:
    token = admin_token(server)
    bearer = f"Authorization: Bearer {token}"
    failures = run_schemathesis(server, tmp_path, AS_ADMIN_SECONDS, "--header", bearer)
    assert not failures, "\n".join(failures)
    failures = run_schemathesis(server, tmp_path, ANONYMOUS_SECONDS)  # and without a token
    assert not failures, "\n".join(failures)
    # the service's own view: no answer of 500 or more, and no exception of the app's
    for line in server.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert record.get("status", 0) < 500, line
            assert record["event"] != "unhandled exception", line
