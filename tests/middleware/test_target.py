"""Redirects never take their origin from the request, and odd request targets get 400.

Raw ASGI scopes, as Hypercorn builds them (`raw_path` undecoded, `path` decoded), so
targets no HTTP client library would send can be tried; tests/server/test_redirects.py
sends the same over real sockets.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import pytest
from quart import Quart

ISSUER_ORIGIN = "https://localhost:8443"


async def raw_request(
    app: Quart, target: bytes, *, scheme: str = "https", host: bytes = b"evil.com"
) -> tuple[int, dict[bytes, bytes], bytes]:
    raw_path, _, query = target.partition(b"?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", host)],
        "client": ("203.0.113.10", 40000),
        "server": ("127.0.0.1", 8443),
        "extensions": {},
    }
    sent: list[dict[str, Any]] = []
    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app.asgi_app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


@pytest.mark.parametrize(
    "target",
    [
        b"/v1//users/me",  # Werkzeug would merge the slashes and redirect to the Host
        b"/v1/%2F/users/me",
        b"/v1/users/me/%2f",
        b"//evil.com/x",
        b"/v1/./users/me",
        b"/v1/notes/..",
        b"/v1/%2e%2E/metrics",
        b"/v1/notes/%00",
        b"/v1/notes/%0d%0aSet-Cookie:x",
        b"/v1/notes/%5c..%5cmetrics",
        b"/v1/notes/%zz",
        b"@evil.com/x",
        b"evil.com/x",
        b"http://evil.com/x",
        b"*",
        b"/v1/notes\\..\\x",
        b"/v1/notes?x=1#fragment",
    ],
)
@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_odd_request_targets_get_400_without_location(
    app: Quart, target: bytes, scheme: str
) -> None:
    status, headers, body = await raw_request(app, target, scheme=scheme)
    assert status == 400, (target, status, headers.get(b"location"))
    assert b"location" not in headers
    assert headers[b"content-type"] == b"application/problem+json" and b"evil" not in body


@pytest.mark.parametrize(
    "target",
    [b"/v1/notes?limit=5&x=%2F", b"/healthz", b"/v1/notes/a:b@c;d=e", b"/", b"/x?q=a|b[1]^<"],
)
async def test_plain_http_redirects_to_the_issuer_origin(app: Quart, target: bytes) -> None:
    status, headers, _ = await raw_request(app, target, scheme="http")
    assert status == 308
    assert headers[b"location"] == ISSUER_ORIGIN.encode() + target


async def test_no_response_redirects_to_the_host_header(app: Quart) -> None:
    """Every route path, doubled slashes and trailing slashes included: no Location
    ever names the Host the client sent."""
    paths = {rule.rule.split("<")[0] for rule in app.url_map.iter_rules()}
    for path in sorted(paths):
        inner = "//".join(path.rsplit("/", 1))  # /v1/users//me
        for variant in (path, path + "/", "/" + path, inner, path.rstrip("/") + "//"):
            status, headers, _ = await raw_request(app, variant.encode())
            assert b"evil" not in headers.get(b"location", b""), (variant, status)
            assert status != 308 or headers[b"location"].startswith(ISSUER_ORIGIN.encode())
