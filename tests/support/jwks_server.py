"""A small HTTPS server on loopback that serves JSON documents an identity provider
would (metadata, JWK Sets) and counts the requests per path, for the issuer tests."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from service.devcerts import make_dev_certs


@dataclass
class Route:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class JsonServer:
    base: str
    ca: Path
    routes: dict[str, Route]
    hits: Counter[str]

    def serve(self, path: str, body: Any, **headers: str) -> None:
        self.routes[path] = Route(200, body, headers)


@contextlib.contextmanager
def json_server(folder: Path, host: str = "127.0.0.1") -> Iterator[JsonServer]:
    certs = make_dev_certs(folder)
    routes: dict[str, Route] = {}
    hits: Counter[str] = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] += 1
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            raw = route.body if isinstance(route.body, bytes) else json.dumps(route.body).encode()
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs["cert"]), str(certs["key"]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield JsonServer(f"https://{host}:{server.server_port}", certs["ca"], routes, hits)
    finally:
        server.shutdown()
        server.server_close()
