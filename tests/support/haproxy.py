"""HAProxy for the tests: found or installed from Debian, and the environment that
points deploy/haproxy/haproxy.cfg at loopback replicas."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
TLS_NAME = "localhost"  # the development certificate's name


class Unavailable(Exception):
    """This machine cannot run the harness (the reason is the skip message)."""


def ensure_haproxy() -> str:
    """The haproxy binary; installed from Debian (apt-get, as root) when missing."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(
            "haproxy is not installed and cannot be installed here (needs root + apt)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "haproxy"],
    ):
        try:
            result = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{' '.join(command)} failed: {exc}") from None
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise Unavailable(f"{' '.join(command)} failed: {' '.join(tail)}")
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise Unavailable("apt-get installed haproxy but no haproxy binary is on this machine")
    return found


def haproxy_env(
    *,
    lb_port: int,
    http_port: int,
    cert: Path,
    ca: Path,
    admin_socket: Path,
    replicas: list[int],
    origin: str | None = None,
) -> dict[str, str]:
    """The variables deploy/haproxy/haproxy.cfg reads, for a loopback deployment."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin"),
        "PORTCULLIS_LB_BIND": f"127.0.0.1:{lb_port}",
        "PORTCULLIS_LB_HTTP_BIND": f"127.0.0.1:{http_port}",
        "PORTCULLIS_LB_CERT": str(cert),
        "PORTCULLIS_LB_CA_FILE": str(ca),
        "PORTCULLIS_LB_ADMIN_SOCKET": str(admin_socket),
        "PORTCULLIS_BACKEND_TLS_NAME": TLS_NAME,
        "PORTCULLIS_LB_ORIGIN": origin or f"https://127.0.0.1:{lb_port}",
    }
    for index, port in enumerate(replicas, start=1):
        env[f"PORTCULLIS_REPLICA_{index}"] = f"127.0.0.1:{port}"
    return env


def balancer_certificate(certs: dict[str, Path]) -> Path:
    """HAProxy wants the certificate and its key in one PEM file."""
    path = certs["cert"].with_name("balancer.pem")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(certs["cert"].read_bytes() + certs["key"].read_bytes())
    return path
