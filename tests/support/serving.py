"""`portcullis serve` as users start it (the make target, the image, the deploy kit), on free
loopback ports; tests of what that command adds to plain Hypercorn use it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from service.devcerts import make_dev_certs
from tests.support.server import Server, free_port, serve_args

PORTCULLIS = Path(sys.executable).parent / "portcullis"


@contextlib.contextmanager
def portcullis_serve(
    tmp: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`portcullis serve --config hypercorn.toml` with the test certificate, until exit."""
    certs = make_dev_certs(tmp / "certs")
    port, http_port = free_port(), free_port()
    data_dir = tmp / "var"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(data_dir),
        "PORTCULLIS_ISSUER": f"https://localhost:{port}",
        "PORTCULLIS_DRAIN_SECONDS": "0.2",
        **(env or {}),
    }
    args = (*serve_args(port, http_port, certs, workers), *args)
    with running(tmp, args, environment, (port, http_port), certs["ca"]) as server:
        yield server


@contextlib.contextmanager
def running(
    tmp: Path, args: tuple[str, ...], env: dict[str, str], ports: tuple[int, int], ca: Path
) -> Iterator[Server]:
    """`portcullis serve ARGS` in `tmp`, once both `ports` listen; stopped on exit."""
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PORTCULLIS), "serve", *args],
            env=env,
            cwd=tmp,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
    server = Server(process, ports[0], ports[1], ca, Path(env["PORTCULLIS_DATA_DIR"]), log)
    try:
        wait_listening(server, *ports)
        yield server
    finally:
        stop(process)


def wait_listening(server: Server, *ports: int) -> None:
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited: {server.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
