"""deploy/haproxy/haproxy.cfg passes `haproxy -c` (HAProxy from Debian, installed when
missing) and keeps the forwarding headers the balancer's own."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from service.devcerts import make_dev_certs
from tests.support.haproxy import (
    HAPROXY_CFG,
    Unavailable,
    balancer_certificate,
    ensure_haproxy,
    haproxy_env,
)

CONFIG = HAPROXY_CFG.read_text()


@pytest.fixture(scope="module")
def haproxy() -> str:
    try:
        return ensure_haproxy()
    except Unavailable as exc:
        pytest.skip(f"no HAProxy: {exc}")


def check(haproxy: str, tmp: Path, *, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    certs = make_dev_certs(tmp / "certs")
    env = haproxy_env(
        lb_port=8443,
        http_port=8080,
        cert=balancer_certificate(certs),
        ca=ca or certs["ca"],
        admin_socket=tmp / "admin.sock",
        replicas=[9001, 9002, 9003],
    )
    return subprocess.run(
        [haproxy, "-c", "-f", str(HAPROXY_CFG)],
        env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_is_valid(haproxy: str, tmp_path: Path) -> None:
    result = check(haproxy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_check_loads_the_tls_files(haproxy: str, tmp_path: Path) -> None:
    result = check(haproxy, tmp_path, ca=tmp_path / "missing-ca.pem")
    assert result.returncode != 0
    assert "missing-ca.pem" in result.stdout + result.stderr


def frontend_rules() -> list[str]:
    section = CONFIG.split("\nfrontend https\n", 1)[1].split("\nfrontend ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip().startswith("http-")]


def test_client_sent_forwarding_headers_are_dropped_before_the_balancer_sets_its_own() -> None:
    rules = frontend_rules()
    dropped = [r.split()[-1].lower() for r in rules if r.startswith("http-request del-header")]
    assert {"forwarded", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"} <= set(dropped)
    set_proto = rules.index("http-request set-header X-Forwarded-Proto https")
    assert all(rules.index(r) < set_proto for r in rules if "del-header" in r)
    assert re.search(r"^\s*option forwardfor\s*$", CONFIG, re.M)


def test_replicas_are_reached_over_verified_tls_and_checked_on_readyz() -> None:
    default_server = next(
        line for line in CONFIG.splitlines() if line.strip().startswith("default-server")
    )
    assert " ssl verify required ca-file " in default_server
    assert " verifyhost " in default_server and " check " in default_server
    assert "http-check send meth GET uri /readyz" in CONFIG
    assert re.search(r"^\s*http-check expect status 200\s*$", CONFIG, re.M)
    assert "alpn h2,http/1.1" in CONFIG
