"""Start the real thing: Hypercorn with hypercorn.toml on free loopback ports.

The one server launcher: the tests use it, and so does the benchmark (`bench/servers.py`
adds CPU pinning and its own settings on top)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.devcerts import make_dev_certs

ROOT = Path(__file__).resolve().parents[2]
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this process: the kernel may give
    the same ephemeral port to two calls in a row (a server's TLS and plain-http ports
    then collided, and TLS clients met the plain listener)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    http_port: int
    ca: Path
    data_dir: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # the server's whole environment

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def kill9(self) -> None:
        """kill -9 the master and every worker at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def serve_args(port: int, http_port: int, certs: dict[str, Path], workers: int) -> list[str]:
    """The options both launchers give: hypercorn.toml, the two loopback binds, the test
    certificate and the worker count."""
    return [
        "--config",
        str(ROOT / "hypercorn.toml"),
        "--bind",
        f"127.0.0.1:{port}",
        "--insecure-bind",
        f"127.0.0.1:{http_port}",
        "--certfile",
        str(certs["cert"]),
        "--keyfile",
        str(certs["key"]),
        "--workers",
        str(workers),
    ]


@contextlib.contextmanager
def run_server(
    tmp: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    app: str = "service.asgi:app",
    prefix: Sequence[str] = (),
    migrate: bool = True,
) -> Iterator[Server]:
    """Hypercorn serving `app` (run under the `prefix` command, e.g. taskset) until the
    block ends, then SIGTERM (and SIGKILL to the whole group after 30 s)."""
    certs = make_dev_certs(tmp / "certs")
    port, http_port = free_port(), free_port()
    data_dir = tmp / "var"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(data_dir),
        "PORTCULLIS_ISSUER": f"https://localhost:{port}",
        "PORTCULLIS_RATE_LIMIT_REGISTER": "1000/minute",
        "PORTCULLIS_RATE_LIMIT_TOKEN": "1000/minute",
        "PORTCULLIS_DRAIN_SECONDS": "0.2",  # tests of the drain itself set their own
        **(env or {}),
    }
    log = tmp / "server.log"
    if migrate:
        subprocess.run(
            [sys.executable, "-m", "service", "migrate"],
            env=environment,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=60,
        )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "hypercorn",
                *serve_args(port, http_port, certs, workers),
                *extra_args,
                app,
            ],
            env=environment,
            cwd=ROOT,
            start_new_session=True,  # its own process group: kill9() reaches the workers
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, http_port, certs["ca"], data_dir, log, environment)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                with socket.create_connection(("127.0.0.1", http_port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
