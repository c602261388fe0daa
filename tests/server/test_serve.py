"""`portcullis serve` from the outside: its own options, TLS unless --insecure, and one-line
failures (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from service.devcerts import make_dev_certs
from tests.support.server import ROOT, free_port, serve_args
from tests.support.serving import PORTCULLIS, running

pytestmark = pytest.mark.server


def environment(tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(tmp / "var"),
        "PORTCULLIS_DRAIN_SECONDS": "0",
    }


def serve(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `portcullis serve` in `tmp` until it exits (it must, on these failures)."""
    return subprocess.run(
        [str(PORTCULLIS), "serve", *args],
        env=environment(tmp),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_help_shows_portcullis_options_not_hypercorns() -> None:
    result = subprocess.run(
        [str(PORTCULLIS), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: portcullis serve")
    for option in ("--config", "--bind", "--certfile", "--keyfile", "--workers", "--insecure"):
        assert option in result.stdout
    assert "application" not in result.stdout  # Hypercorn's required positional argument
    assert "--worker-class" not in result.stdout


def test_without_tls_it_refuses_to_serve(tmp_path: Path) -> None:
    """No hypercorn.toml here and no certificate: no plain HTTP unless asked for."""
    result = serve(tmp_path, "--bind", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("portcullis: refusing to serve without TLS")
    assert "--insecure" in line


def test_insecure_serves_plain_http_and_says_so_at_warning(tmp_path: Path) -> None:
    port = free_port()
    args = ("--insecure", "--bind", f"127.0.0.1:{port}")
    with running(tmp_path, args, environment(tmp_path), (port, port), tmp_path) as server:
        # The service answers over cleartext (its own rule then sends a browser to https,
        # unless a trusted TLS-terminating proxy says the request came over https).
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert answer.status_code == 308
        assert answer.headers["location"].startswith("https://")
    warnings = [
        json.loads(line)
        for line in server.log.read_text().splitlines()
        if line.startswith("{") and "server.insecure" in line
    ]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING", server.log.read_text()


def test_hypercorn_toml_in_the_working_directory_is_the_default(tmp_path: Path) -> None:
    """As in a checkout or the image: `portcullis serve` alone serves TLS with its files."""
    certs = make_dev_certs(tmp_path / "certs")  # where hypercorn.toml looks: certs/server.pem
    shutil.copy(ROOT / "hypercorn.toml", tmp_path / "hypercorn.toml")
    port, http_port = free_port(), free_port()
    args = ("--bind", f"127.0.0.1:{port}", "--insecure-bind", f"127.0.0.1:{http_port}")
    env = {**environment(tmp_path), "PORTCULLIS_ISSUER": f"https://localhost:{port}"}
    with running(tmp_path, args, env, (port, http_port), certs["ca"]) as server:
        answer = httpx.get(f"{server.url}/healthz", verify=server.ssl_context(), timeout=10)
        assert answer.status_code == 200
    assert "server.insecure" not in server.log.read_text()


def test_a_port_already_in_use_is_named_in_one_line(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path / "certs")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = serve(
            tmp_path,
            "--config",
            str(ROOT / "hypercorn.toml"),
            "--bind",
            address,
            "--insecure-bind",
            f"127.0.0.1:{free_port()}",
            "--certfile",
            str(certs["cert"]),
            "--keyfile",
            str(certs["key"]),
        )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line == f"portcullis: cannot listen on {address}: Address already in use"


def test_a_missing_config_file_is_named_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = serve(tmp_path, "--config", str(missing))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"portcullis: cannot read the server settings {missing}: No such file or directory\n"
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_in_process_serving_also_gets_the_tls_groups(tmp_path: Path) -> None:
    """`--workers 0` serves from the command's own process, whose OpenSSL has already
    started: it restarts itself with the configuration named (service/server/tls.py)."""
    certs = make_dev_certs(tmp_path / "certs")
    port, http_port = free_port(), free_port()
    args = tuple(serve_args(port, http_port, certs, 0))
    env = {**environment(tmp_path), "PORTCULLIS_ISSUER": f"https://localhost:{port}"}
    with running(tmp_path, args, env, (port, http_port), certs["ca"]):
        chosen = {group: temp_key(port, certs["ca"], group) for group in ("X448", "X25519")}
    assert chosen["X448"] is None  # offered only X448: no group in common
    assert chosen["X25519"] is not None and "X25519" in chosen["X25519"]


def temp_key(port: int, ca: Path, group: str) -> str | None:
    result = subprocess.run(
        [  # noqa: S607
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(ca),
            "-tls1_3",
            "-groups",
            group,
        ],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = result.stdout.decode(errors="replace")
    return next((line for line in output.splitlines() if "Server Temp Key" in line), None)


def test_in_development_the_issuer_follows_the_port_served_on(tmp_path: Path) -> None:
    """No PORTCULLIS_ISSUER: tokens name, and the redirect goes to, the port served on."""
    certs = make_dev_certs(tmp_path / "certs")
    port, http_port = free_port(), free_port()
    args = tuple(serve_args(port, http_port, certs, 1))
    with running(tmp_path, args, environment(tmp_path), (port, http_port), certs["ca"]) as server:
        with httpx.Client(verify=server.ssl_context(), timeout=10) as client:
            meta = client.get(f"https://localhost:{port}/.well-known/oauth-authorization-server")
            assert meta.json()["issuer"] == f"https://localhost:{port}"
            plain = client.get(f"http://127.0.0.1:{http_port}/v1/notes?x=1")
            assert plain.status_code == 308
            assert plain.headers["location"] == f"https://localhost:{port}/v1/notes?x=1"
