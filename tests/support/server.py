"""Start the real thing: Hypercorn with hypercorn.toml on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.servers import free_port
from service.devcerts import make_dev_certs

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    http_port: int
    ca: Path
    data_dir: Path
    log: Path

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


@contextlib.contextmanager
def run_server(
    tmp: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Server]:
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
                sys.executable,
                "-m",
                "hypercorn",
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
                *extra_args,
                "service.asgi:app",
            ],
            env=environment,
            cwd=ROOT,
            start_new_session=True,  # its own process group: kill9() reaches the workers
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, http_port, certs["ca"], data_dir, log)
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
                process.kill()
                process.wait()
