"""Problem details for every error, strict JSON decoding, body limits and headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from quart import Quart

from service.api.problems import problem_body
from tests.conftest import bearer, client_for, user_token

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = dict(r.json())
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    for leak in ("Traceback", "sqlalchemy", "/work/", "site-packages", "SELECT"):
        assert leak not in r.text
    return body


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "jsonuser"))


async def test_framework_errors_are_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404)
    r = await client.delete("/healthz")
    assert_problem(r, 405)
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert_problem(await client.put("/v1/notes"), 405)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{", 400),
        (b"", 400),
        (b'{"title": "a", "title": "b"}', 400),
        (b'{"title": NaN}', 400),
        (b'{"title": Infinity}', 400),
        (b'{"title": -Infinity}', 400),
        (b'{"n": 1e999}', 400),
        (b'{"n": ' + b"1" * 4301 + b"}", 400),
        (b'{"n": 1.' + b"1" * 4301 + b"}", 400),
        (b"[" * 100000 + b"]" * 100000, 413),
        (b"[" * 30000 + b"]" * 30000, 400),
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, 400),
        (b"\xff\xfe{}", 400),
        (b"[1, 2]", 422),
        (b'"just a string"', 422),
        (b"null", 422),
    ],
)
async def test_unparseable_json(
    client: httpx.AsyncClient, auth: dict[str, str], raw: bytes, status: int
) -> None:
    r = await client.post(
        "/v1/notes", content=raw, headers=auth | {"Content-Type": "application/json"}
    )
    assert_problem(r, status)
    assert (await client.get("/v1/notes", headers=auth)).json()["items"] == []


async def test_unsupported_media_type(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ):
        r = await client.post(
            "/v1/notes", content=b'{"title": "x"}', headers=auth | {"Content-Type": content_type}
        )
        assert_problem(r, 415)
    r = await client.post("/v1/notes", content=b'{"title": "x"}', headers=auth)
    assert_problem(r, 415)


async def test_body_limit_by_content_length_and_chunked(settings_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    from service import create_app

    app = create_app(settings_factory(max_body_bytes=2048))
    async with app.test_app(), client_for(app) as c:
        token = bearer(await user_token(c, "bigbody"))
        big = b'{"title": "' + b"x" * 4000 + b'"}'
        r = await c.post(
            "/v1/notes", content=big, headers=token | {"Content-Type": "application/json"}
        )
        assert_problem(r, 413)

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"title": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}'

        r = await c.post(
            "/v1/notes", content=chunks(), headers=token | {"Content-Type": "application/json"}
        )
        assert "content-length" not in r.request.headers
        assert_problem(r, 413)
        r = await c.post(
            "/v1/auth/token",
            content=b"grant_type=password&password=" + b"x" * 4000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_problem(r, 413)
        assert (await c.get("/v1/notes", headers=token)).json()["items"] == []


async def test_content_length_with_transfer_encoding_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/notes",
        content=b'{"title": "smuggled"}',
        headers=auth | {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert "content-length" in r.request.headers
    assert_problem(r, 400)
    assert r.headers["connection"] == "close"  # RFC 9112 §6.1: close after answering
    assert (await client.get("/v1/notes", headers=auth)).json()["items"] == []


async def test_early_answer_waits_for_the_rest_of_a_bounded_body() -> None:
    """An answer started while the body is still arriving is held until the app (Quart
    reads the body in a task of its own) has it all, so the connection stays usable."""
    from service.middleware import BodyLimitMiddleware

    log: list[tuple[str, object]] = []
    incoming: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def receive() -> dict[str, object]:
        message = await incoming.get()
        log.append(("received", message["more_body"]))
        return message

    async def send(message: MutableMapping[str, object]) -> None:
        log.append(("sent", message["type"]))

    async def app(scope: object, receive: Any, send: Any) -> None:
        async def read_body() -> None:
            while (await receive())["more_body"]:
                pass

        reader = asyncio.create_task(read_body())
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        reader.cancel()

    scope = {"type": "http", "http_version": "1.1", "headers": [(b"content-length", b"20")]}
    await incoming.put({"type": "http.request", "body": b"x" * 10, "more_body": True})
    answering = asyncio.create_task(BodyLimitMiddleware(app, 1000)(scope, receive, send))
    for _ in range(20):
        await asyncio.sleep(0)
    assert ("sent", "http.response.start") not in log  # held: the body is not all in
    await incoming.put({"type": "http.request", "body": b"x" * 10, "more_body": False})
    await answering
    assert log.index(("received", False)) < log.index(("sent", "http.response.start"))


async def test_unexpected_exception_is_generic_500(app: Quart, client: httpx.AsyncClient) -> None:
    from service.security.authn import public

    @public
    async def boom() -> str:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_url_rule("/boom", "boom", boom)
    r = await client.get("/boom")
    body = assert_problem(r, 500)
    assert "secret internals" not in r.text and body["detail"] == "An unexpected error occurred."


async def test_security_headers_everywhere(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get("/healthz"),
        await client.get("/nope"),
        await client.post("/v1/notes", json={}),
        await client.get("/openapi.json"),
    ):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (r.url, name)
        assert "server" not in r.headers
    r = await client.get("/v1/users/me")
    assert r.headers["cache-control"] == "no-store"


async def test_no_hsts_on_plain_http_and_redirect(
    app: Quart, capsys: pytest.CaptureFixture[str]
) -> None:
    async with client_for(app, scheme="http") as c:
        r = await c.get("/v1/notes?limit=5&x=%2F")
        assert r.status_code == 308
        assert r.headers["location"] == "https://localhost:8443/v1/notes?limit=5&x=%2F"
        assert "strict-transport-security" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff" and r.content == b""
        r = await c.post("/v1/auth/token", headers={"Host": "evil.example"})
        assert r.headers["location"] == "https://localhost:8443/v1/auth/token"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    redirects = [x for x in lines if x["event"] == "http.request" and x["status"] == 308]
    assert [x["route"] for x in redirects] == ["<redirect>", "<redirect>"]


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("abc-123_x.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("bad id", False),
        ("x\r\nSet-Cookie: a=b", False),
        ("", False),
    ],
)
async def test_request_id(client: httpx.AsyncClient, given: str, echoed: bool) -> None:
    headers = {"X-Request-ID": given} if "\r" not in given else {}
    r = await client.get("/healthz", headers=headers)
    rid = r.headers["x-request-id"]
    if echoed:
        assert rid == given
    else:
        assert rid != given and len(rid) == 32
    assert len(r.headers.get_list("x-request-id")) == 1


async def test_docs_page_has_its_own_csp_and_self_hosted_assets(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "cdn" not in r.text and "<script>" not in r.text
    for asset in (
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
        "/docs/init.js",
    ):
        assert (await client.get(asset)).status_code == 200
    assert (await client.get("/docs/static/../../etc/passwd")).status_code == 404


async def test_openapi_documents_every_route(app: Quart, client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            templ = rule.rule.replace("<", "{").replace(">", "}")
            assert templ in paths, templ
    create = paths["/v1/notes"]["post"]
    assert "application/json" in create["requestBody"]["content"]
    for form_route in ("/v1/auth/token", "/v1/auth/revoke"):
        body = paths[form_route]["post"]["requestBody"]["content"]
        assert "application/x-www-form-urlencoded" in body


def test_problem_body_shape() -> None:
    body = json.loads(problem_body(429, detail="slow down"))
    assert (
        body["status"] == 429
        and body["title"] == "Too Many Requests"
        and body["detail"] == "slow down"
    )
