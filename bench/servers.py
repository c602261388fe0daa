"""The benchmark's servers: the tests' launcher (`tests/support/server.py`, Hypercorn with
the project's `hypercorn.toml` on free loopback ports) pinned to a CPU set, with limits
high enough never to refuse the load, and its worker processes (for RSS and the
profiler)."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import run_server as launch

ROOT = Path(__file__).resolve().parents[1]
SERVER_CPUS = "0"  # the server's worker(s) here, the load generator on the other core
CLIENT_CPUS = "1"
# The limits are still evaluated on every request; they are set high enough that the
# bench's own load is never refused.
HIGH_LIMIT = "10000000/minute"


def pinned(cpus: str | None) -> list[str]:
    """The argv prefix that runs a command on `cpus` (nothing when unpinned)."""
    if cpus is None:
        return []
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset (util-linux) is required to pin the server and wrk")
    return [taskset, "-c", cpus]


def cli(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    """`python -m service ARGS` (the product's own CLI), stdout on success."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"service {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The settings of a bench server (the launcher adds the data folder and issuer)."""
    return {
        "PORTCULLIS_RATE_LIMIT_DEFAULT": HIGH_LIMIT,
        "PORTCULLIS_RATE_LIMIT_TOKEN": HIGH_LIMIT,
        "PORTCULLIS_RATE_LIMIT_REGISTER": HIGH_LIMIT,
        "PORTCULLIS_RATE_LIMIT_LOGIN": f"{HIGH_LIMIT};{HIGH_LIMIT}",
        "PORTCULLIS_ACCESS_TOKEN_TTL": "7200",
        "PORTCULLIS_DRAIN_SECONDS": "0",
        **(extra or {}),
    }


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    ca: Path
    env: dict[str, str]
    log: Path
    workers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def base(self) -> str:
        """What wrk connects to (it does not resolve `localhost` to IPv4 first)."""
        return f"https://127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return httpx.Client(verify=ctx, base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def rss_kib(self) -> int:
        """Resident memory of the (first) worker, KiB."""
        return rss_kib(self.workers[0])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def worker_pids(master: int) -> list[int]:
    """Hypercorn's worker processes (multiprocessing `spawn` children, not its resource
    tracker)."""
    pids = []
    for pid in _children(master):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
    return sorted(pids)


@contextlib.contextmanager
def run_server(
    name: str,
    tmp: Path,
    app: str,
    *,
    workers: int = 1,
    cpus: str | None = SERVER_CPUS,
    env: dict[str, str] | None = None,
    migrate: bool = True,
) -> Iterator[Server]:
    """Hypercorn `--config hypercorn.toml` serving `app`, pinned with taskset to `cpus`
    (master and workers: they inherit the affinity), until the block ends."""
    tmp.mkdir(parents=True, exist_ok=True)
    with launch(
        tmp,
        workers=workers,
        env=service_env(env),
        app=app,
        prefix=pinned(cpus),
        migrate=migrate,
    ) as launched:
        server = Server(
            name, launched.process, launched.port, launched.ca, launched.env, launched.log
        )
        _wait_ready(server, workers)
        yield server


def _wait_ready(server: Server, workers: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-3000:]}")
        server.workers = worker_pids(server.process.pid)
        if len(server.workers) == workers:
            try:
                with server.client() as c:
                    if c.get("/healthz").status_code == 200:
                        return
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start: {server.log.read_text()[-3000:]}")
        time.sleep(0.2)
