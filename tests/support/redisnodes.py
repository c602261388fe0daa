"""Local Redis topologies from the Debian `redis-server` binary: a 3-master Redis
Cluster and a master watched by one Sentinel, on free loopback ports, for one module."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.server import free_port

Popen = subprocess.Popen[bytes]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
MISSING = (
    None
    if REDIS_SERVER and REDIS_CLI
    else "redis-server/redis-cli are not installed (Debian package redis-server)"
)


def _start(folder: Path, port: int, *extra: str, sentinel: Path | None = None) -> Popen:
    folder.mkdir(parents=True, exist_ok=True)
    assert REDIS_SERVER
    if sentinel is not None:  # a Sentinel takes its config file first, and little else
        command = [REDIS_SERVER, str(sentinel), "--sentinel"]
    else:
        command = [REDIS_SERVER, "--save", "", "--appendonly", "no", "--dir", str(folder)]
    command += ["--port", str(port), "--bind", "127.0.0.1", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"redis-server on {port} did not start") from None
            time.sleep(0.05)


def _cli(port: int, *args: str) -> str:
    assert REDIS_CLI
    done = subprocess.run(
        [REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=30
    )
    return done.stdout


def _wait_for(port: int, command: tuple[str, ...], expected: str, what: str) -> None:
    """Ask `redis-cli -p port command` until its answer holds `expected` (20 s at most)."""
    deadline = time.monotonic() + 20
    while expected not in _cli(port, *command):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready")
        time.sleep(0.1)


def _stop(processes: list[Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def redis_cluster(folder: Path) -> Iterator[str]:
    """Three masters, no replicas; yields a `redis+cluster://` URL naming one seed."""
    ports = [free_port() for _ in range(3)]
    processes: list[Popen] = []
    try:
        for port in ports:
            processes.append(
                _start(
                    folder / str(port),
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(free_port()),  # not port + 10000: may not exist
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                )
            )
        assert REDIS_CLI
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        _wait_for(ports[0], ("cluster", "info"), "cluster_state:ok", "the Redis Cluster")
        yield f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    finally:
        _stop(processes)


@contextlib.contextmanager
def redis_sentinel(folder: Path, master_name: str = "portcullis") -> Iterator[str]:
    """One master and one Sentinel watching it; yields a `redis+sentinel://` URL."""
    master_port, sentinel_port = free_port(), free_port()
    processes: list[Popen] = []
    try:
        processes.append(_start(folder / "master", master_port))
        config = folder / "sentinel" / "sentinel.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {master_name} 2000\n"
            f"dir {config.parent}\n"
        )
        processes.append(_start(config.parent, sentinel_port, sentinel=config))
        command = ("sentinel", "get-master-addr-by-name", master_name)
        _wait_for(sentinel_port, command, str(master_port), "the Sentinel's master")
        yield f"redis+sentinel://127.0.0.1:{sentinel_port}/{master_name}/0"
    finally:
        _stop(processes)
