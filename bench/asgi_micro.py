"""In-process micro-benchmark of the request path: the app's ASGI callable driven
directly (no server, no socket) for `GET /healthz`, an authenticated
`GET /v1/users/me` (Bearer, and DPoP with a fresh proof per request) and
`GET /v1/notes/{id}`, plus one access-log line and one metrics update, in µs per call.

Run: `.venv/bin/python -m bench.asgi_micro [--n 3000]` (SQLite in a temporary folder;
log lines go to /dev/null). Times are CPU time of this process (steadier than wall
time on a shared machine), for before/after comparisons on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

PASSWORD = "Tr0ub4dor&3-horse-staple"  # noqa: S105 (a throw-away bench user)


def _expect(status: int, wanted: int, detail: object) -> None:
    if status != wanted:
        raise SystemExit(f"expected {wanted}, got {status}: {detail!r}")


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request through the whole ASGI stack with a fake receive/send."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost:8443"), *headers],
        "client": ("203.0.113.10", 40000),
        "server": ("127.0.0.1", 8443),
        "extensions": {},
    }
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    data = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], list(start["headers"]), data


async def per_request_us(
    app: Any, method: str, path: str, headers: Any, n: int, *, together: int = 1
) -> float:
    """CPU µs per request, `together` requests at a time; `headers` is a list, or a
    function giving each request's (called before the clock starts: a DPoP proof per
    request is signed ahead)."""
    each = headers if callable(headers) else lambda _: headers
    warm = [each(i) for i in range(min(200, n))]
    for given in warm:
        await call(app, method, path, given)
    lists = [each(i) for i in range(n)]
    started = time.process_time()
    for first in range(0, n, together):
        answers = await asyncio.gather(
            *(call(app, method, path, given) for given in lists[first : first + together])
        )
        for status, _, body in answers:  # a replayed or refused proof is no measurement
            _expect(status, 200, body)
    elapsed = time.process_time() - started
    return elapsed / n * 1e6


async def _dpop_headers(app: Any, issuer: str, form: bytes) -> Any:
    """A DPoP-bound token for the bench user, and a function giving a request's
    `Authorization: DPoP` and fresh proof (RFC 9449; ES256, as oauth4webapi's default)."""
    from bench.dpop import Holder

    holder = Holder()
    url = issuer.rstrip("/")
    proof = holder.proof("POST", f"{url}/v1/auth/token").encode()
    status, _, body = await call(
        app,
        "POST",
        "/v1/auth/token",
        [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(form)).encode()),
            (b"dpop", proof),
        ],
        form,
    )
    _expect(status, 200, body)
    token = json.loads(body)["access_token"]
    auth = (b"authorization", f"DPoP {token}".encode())
    me = f"{url}/v1/users/me"
    return lambda _: [auth, (b"dpop", holder.proof("GET", me, token).encode())]


def per_call_us(fn: Any, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


async def main(n: int) -> dict[str, float]:
    from service import create_app
    from service.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="asgi-micro-"))
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
        reg = json.dumps({"username": "bench", "password": PASSWORD}).encode()
        json_head = [(b"content-type", b"application/json")]
        clen = [(b"content-length", str(len(reg)).encode())]
        status, _, body = await call(
            app.asgi_app, "POST", "/v1/auth/register", json_head + clen, reg
        )
        _expect(status, 201, body)
        form = urlencode(
            {"grant_type": "password", "username": "bench", "password": PASSWORD}
        ).encode()
        status, _, body = await call(
            app.asgi_app,
            "POST",
            "/v1/auth/token",
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(form)).encode()),
            ],
            form,
        )
        _expect(status, 200, body)
        token = json.loads(body)["access_token"]
        auth = [(b"authorization", f"Bearer {token}".encode())]
        asgi = app.asgi_app
        note = json.dumps({"title": "bench", "body": "a note to read back"}).encode()
        status, _, body = await call(
            asgi,
            "POST",
            "/v1/notes",
            auth + json_head + [(b"content-length", str(len(note)).encode())],
            note,
        )
        _expect(status, 201, body)
        note_path = f"/v1/notes/{json.loads(body)['id']}"
        dpop_headers = await _dpop_headers(asgi, settings.issuer, form)
        for _ in range(3):  # interleaved rounds, best of each
            # The DPoP row 64 at a time, as `make bench` sends them: the replay cache's
            # database writes are shared by the proofs that arrive together.
            for key, path, headers, together in (
                ("healthz_us", "/healthz", [], 1),
                ("me_us", "/v1/users/me", auth, 1),
                ("me_dpop_us", "/v1/users/me", dpop_headers, 64),
                ("note_us", note_path, auth, 1),
            ):
                took = await per_request_us(asgi, "GET", path, headers, n, together=together)
                out[key] = min(out.get(key, took), took)

        from service.context import RequestFacts, current_request
        from service.logging import access_line

        facts = RequestFacts(
            request_id="0123456789abcdef0123456789abcdef",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            client_ip="203.0.113.10",
        )
        token_var = current_request.set(facts)
        out["access_log_us"] = per_call_us(
            lambda: access_line(
                method="GET",
                path="/v1/users/me",
                route="/v1/users/me",
                status=200,
                seconds=0.0012345,
                client_ip="203.0.113.10",
                principal="0190a0b1-aaaa-7bbb-8ccc-0123456789ab",
            ),
            n * 3,
        )
        current_request.reset(token_var)
        metrics = app.extensions["portcullis"].metrics
        out["metrics_observe_us"] = per_call_us(
            lambda: metrics.observe_request("GET", "/v1/users/me", 200, 0.0012345), n * 3
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    real = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        try:
            result = asyncio.run(main(args.n))
        finally:
            sys.stdout = real
    print(json.dumps({k: round(v, 2) for k, v in result.items()}, indent=1))
