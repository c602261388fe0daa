"""Scale-out harness: Hypercorn replicas on loopback ports behind the real HAProxy
configured by deploy/haproxy/haproxy.cfg, sharing one PostgreSQL database, one Redis
(reached through a TCP proxy that can cut it) and one signing key file."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.devcerts import make_dev_certs
from tests.support.haproxy import HAPROXY_CFG, balancer_certificate, haproxy_env
from tests.support.loopthread import LoopThread
from tests.support.server import free_port
from tests.support.tcpproxy import TcpProxy, proxy_for

# The service (and the balancer) close idle keep-alive connections after 5 s, which is
# httpx's own default expiry: a request could then leave on a connection the other side is
# closing that instant ("Server disconnected without sending a response"). Like any
# well-behaved client, the tests drop idle connections well before the server does.
KEEP_ALIVE = httpx.Limits(keepalive_expiry=2.0)

ROOT = Path(__file__).resolve().parents[2]


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@dataclass
class Replica:
    name: str
    port: int
    http_port: int
    data_dir: Path
    log: Path
    env: dict[str, str]
    certs: dict[str, Path]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hypercorn",
                    "--config",
                    str(ROOT / "hypercorn.toml"),
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--insecure-bind",
                    f"127.0.0.1:{self.http_port}",
                    "--certfile",
                    str(self.certs["cert"]),
                    "--keyfile",
                    str(self.certs["key"]),
                    "--workers",
                    "1",
                    "service.asgi:app",
                ],
                env={**self.env, "PORTCULLIS_DATA_DIR": str(self.data_dir)},
                cwd=ROOT,
                start_new_session=True,  # its own process group: kill9() reaches the worker
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        context = ssl.create_default_context(cafile=str(self.certs["ca"]))
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                with httpx.Client(verify=context, timeout=2) as client:
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def sigterm(self) -> None:
        """SIGTERM to Hypercorn's main process only, as `docker stop` or the kubelet send it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        _stop(self.process)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def requests(self, **match: object) -> list[dict[str, Any]]:
        """Access-log records (`http.request`) whose fields equal `match`."""
        return [
            r
            for r in self.records()
            if r.get("event") == "http.request" and all(r.get(k) == v for k, v in match.items())
        ]


@dataclass
class Cluster:
    replicas: list[Replica]
    lb_port: int
    lb_http_port: int
    ca: Path
    admin_socket: Path
    keys_file: Path
    env: dict[str, str]
    redis_proxy: TcpProxy
    loop: LoopThread
    haproxy_log: Path
    haproxy: subprocess.Popen[bytes] | None = None
    sources_used: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.lb_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def fresh_source(self) -> str:
        """A loopback address no test used yet: its own rate-limit and block budgets."""
        self.sources_used += 1
        return f"127.0.1.{self.sources_used}"

    def client(self, source: str = "127.0.0.1", **kwargs: Any) -> httpx.Client:
        """A client of the balancer whose connections come from `source`."""
        transport = httpx.HTTPTransport(
            verify=self.ssl_context(), local_address=source, limits=KEEP_ALIVE
        )
        return httpx.Client(transport=transport, base_url=self.url, timeout=30, **kwargs)

    def aclient(
        self, source: str = "127.0.0.1", *, base_url: str | None = None, http2: bool = False
    ) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(
            verify=self.ssl_context(),
            local_address=source,
            http2=http2,
            limits=httpx.Limits(
                max_connections=200,
                max_keepalive_connections=50,
                keepalive_expiry=KEEP_ALIVE.keepalive_expiry,
            ),
        )
        return httpx.AsyncClient(transport=transport, base_url=base_url or self.url, timeout=30)

    def direct(self, replica: Replica) -> httpx.Client:
        """A client of one replica, bypassing the balancer."""
        return httpx.Client(
            verify=self.ssl_context(), base_url=replica.url, timeout=30, limits=KEEP_ALIVE
        )

    # HAProxy runtime API ----------------------------------------------------------

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_status(self) -> dict[str, str]:
        """HAProxy's view of each replica: UP, DOWN, `UP 1/2`, `DOWN 1/2`, NOLB, MAINT..."""
        text = self.admin("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "portcullis" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_status(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float = 30
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.server_status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy servers are {status} after {timeout} s")
            time.sleep(0.1)

    def wait_all_up(self, timeout: float = 30) -> None:
        names = {r.name for r in self.replicas}
        self.wait_status(lambda s: set(s) == names and all(v == "UP" for v in s.values()), timeout)

    def restart(self, replica: Replica) -> None:
        """Start a stopped replica again and wait until the balancer sends it traffic."""
        replica.start()
        replica.wait_ready()
        self.wait_all_up()

    # Dependencies -----------------------------------------------------------------

    def cut_redis(self) -> None:
        self.loop.call(self.redis_proxy.cut)

    def restore_redis(self) -> None:
        self.loop.call(self.redis_proxy.restore)

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`python -m service ...` with the replicas' settings (shared key file, database)."""
        return subprocess.run(
            [sys.executable, "-m", "service", *args],
            env={**self.env, "PORTCULLIS_DATA_DIR": str(self.keys_file.parent.parent), **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextlib.contextmanager
def run_cluster(
    tmp: Path,
    *,
    haproxy: str,
    database_url: str,
    redis_url: str,
    env: dict[str, str],
    replicas: int = 3,
) -> Iterator[Cluster]:
    certs = make_dev_certs(tmp / "certs")
    keys_file = tmp / "shared" / "keys" / "jwks.json"
    lb_port, lb_http_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        loop = stack.enter_context(LoopThread())
        proxy, proxied_redis = loop.run(proxy_for(redis_url))
        stack.callback(lambda: loop.run(proxy.stop()))
        common = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORTCULLIS_DATABASE_URL": database_url,
            "PORTCULLIS_REDIS_URL": proxied_redis,
            "PORTCULLIS_SIGNING_KEYS_FILE": str(keys_file),
            "PORTCULLIS_ISSUER": f"https://127.0.0.1:{lb_port}",
            "PORTCULLIS_TRUSTED_PROXIES": "127.0.0.1/32",  # HAProxy connects from here
            "PORTCULLIS_FORWARDED_HEADER": "x-forwarded-for",
            **env,
        }
        nodes = []
        for index in range(1, replicas + 1):
            data_dir = tmp / f"replica{index}"
            data_dir.mkdir()
            node = Replica(
                name=f"replica{index}",
                port=free_port(),
                http_port=free_port(),
                data_dir=data_dir / "var",
                log=data_dir / "server.log",
                env=common,
                certs=certs,
            )
            nodes.append(node)
            stack.callback(node.stop)
        # The first replica migrates the database and creates the key file; then the rest.
        nodes[0].start()
        nodes[0].wait_ready()
        for node in nodes[1:]:
            node.start()
        for node in nodes[1:]:
            node.wait_ready()
        cluster = Cluster(
            replicas=nodes,
            lb_port=lb_port,
            lb_http_port=lb_http_port,
            ca=certs["ca"],
            admin_socket=tmp / "haproxy.sock",
            keys_file=keys_file,
            env=common,
            redis_proxy=proxy,
            loop=loop,
            haproxy_log=tmp / "haproxy.log",
        )
        lb_env = haproxy_env(
            lb_port=lb_port,
            http_port=lb_http_port,
            cert=balancer_certificate(certs),
            ca=certs["ca"],
            admin_socket=cluster.admin_socket,
            replicas=[n.port for n in nodes],
        )
        with cluster.haproxy_log.open("ab") as out:
            cluster.haproxy = subprocess.Popen(
                [haproxy, "-db", "-f", str(HAPROXY_CFG)],
                env=lb_env,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        stack.callback(lambda: _stop(cluster.haproxy))
        deadline = time.monotonic() + 30
        while not cluster.admin_socket.exists():
            if cluster.haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {cluster.haproxy_log.read_text()}")
            time.sleep(0.1)
        cluster.wait_all_up()
        yield cluster
