"""`make run PORT=...` as a new user types it: tokens carry `iss` on that port, and the
plain-http port redirects there (the issuer follows the bind unless it is configured)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.devcerts import make_dev_certs
from tests.conftest import PASSWORD
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.server


def _serve_command(port: int, http_port: int) -> str:
    """The command `make run` would serve with (`make -n`: nothing is run)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        [make, "-n", "run", f"PORT={port}", f"HTTP_PORT={http_port}"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dry.stdout.replace("\\\n", " ").splitlines()
    (serve,) = [line for line in lines if "portcullis serve" in line]
    return serve


def _wait(process: subprocess.Popen[bytes], *ports: int) -> None:
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            assert process.poll() is None, "the server exited"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)


def test_make_run_on_another_port_issues_and_redirects_to_that_port(tmp_path: Path) -> None:
    env_file = ROOT / ".env"
    if env_file.exists() and "PORTCULLIS_ISSUER" in env_file.read_text():
        pytest.skip(".env sets PORTCULLIS_ISSUER: `make run` uses it as it is")
    port, http_port = free_port(), free_port()
    command = _serve_command(port, http_port)  # no issuer: `portcullis serve` derives it
    certs = make_dev_certs(tmp_path / "certs")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(tmp_path / "var"),
    }
    subprocess.run(
        [sys.executable, "-m", "service", "migrate"], cwd=ROOT, env=env, check=True, timeout=120
    )
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"{command} --certfile {certs['cert']} --keyfile {certs['key']}"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # its own process group: the shell and the server stop together
    try:
        _wait(process, port, http_port)
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(certs["ca"])),
            base_url=f"https://localhost:{port}",
        ) as c:
            r = c.post("/v1/auth/register", json={"username": "alice", "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = c.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            )
            assert r.status_code == 200, r.text
            payload = r.json()["access_token"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            assert claims["iss"] == f"https://localhost:{port}"
            meta = c.get("/.well-known/oauth-authorization-server").json()
            assert meta["issuer"] == f"https://localhost:{port}"
        r = httpx.get(f"http://127.0.0.1:{http_port}/v1/notes?x=1")
        assert r.status_code == 308
        assert r.headers["location"] == f"https://localhost:{port}/v1/notes?x=1"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
