"""What tracing costs on the request path: `python -m tools.tracing_cost [--n 3000]`.

Drives the app's ASGI callable in-process (bench.asgi_micro) for `GET /healthz`, an
authenticated `GET /v1/users/me` and `GET /v1/notes/{id}`, with tracing off, on at 100%
and on at 10% sampling (`parentbased_traceidratio`), exporting over OTLP/HTTP to a collector
in another process (which accepts and drops). CPU time of this process, exporter thread
included, in µs per request; best of three interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.asgi_micro import PASSWORD, call, per_request_us

_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(n: int, endpoint: str) -> dict[str, float]:
    from service import create_app, tracing
    from service.config import Settings
    from service.tracing_setup import instrument_database

    tmp = Path(tempfile.mkdtemp(prefix="tracing-cost-"))
    settings = Settings(
        _env_file=None,
        data_dir=tmp / "var",
        certfile=tmp / "none.pem",
        rate_limit_token="100000/minute",  # noqa: S106
        rate_limit_default="10000000/minute",
    )
    app = create_app(settings)
    out: dict[str, float] = {}
    async with app.test_app():
        asgi = app.asgi_app
        reg = json.dumps({"username": "bench", "password": PASSWORD}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(reg))]
        await call(asgi, "POST", "/v1/auth/register", head, reg)
        form = urlencode({"grant_type": "password", "username": "bench", "password": PASSWORD})
        _, _, body = await call(
            asgi,
            "POST",
            "/v1/auth/token",
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"%d" % len(form)),
            ],
            form.encode(),
        )
        auth = [(b"authorization", f"Bearer {json.loads(body)['access_token']}".encode())]
        note = json.dumps({"title": "bench", "body": "a note to read back"}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(note))]
        _, _, body = await call(asgi, "POST", "/v1/notes", auth + head, note)
        note_path = f"/v1/notes/{json.loads(body)['id']}"
        modes: dict[str, dict[str, str] | None] = {
            "off": None,
            "100%": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
            "10%": {
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            },
        }
        instrumented = False
        for _ in range(3):
            for mode, sampler in modes.items():
                if sampler is not None:
                    os.environ.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **sampler})
                    tracing.start()
                    if not instrumented:
                        instrument_database(app.extensions["portcullis"].db)
                        instrumented = True
                for key, path, headers in (
                    ("healthz", "/healthz", []),
                    ("me", "/v1/users/me", auth),
                    ("note", note_path, auth),
                ):
                    took = await per_request_us(asgi, "GET", path, headers, n)
                    name = f"{key}_{mode}_us"
                    out[name] = min(out.get(name, took), took)
                if sampler is not None:
                    await tracing.stop(5.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    port = _free_port()
    sink = subprocess.Popen([sys.executable, "-c", _SINK, str(port)])  # noqa: S603
    time.sleep(0.5)
    real = sys.stdout
    try:
        with open(os.devnull, "w") as devnull:
            sys.stdout = devnull
            result = asyncio.run(measure(args.n, f"http://127.0.0.1:{port}"))
    finally:
        sys.stdout = real
        sink.terminate()
    rows: dict[str, Any] = {k: round(v, 1) for k, v in result.items()}
    sys.stdout.write(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
