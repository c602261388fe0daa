"""Problem details for every error: framework errors, unparseable or wrongly typed bodies,
unexpected exceptions, and the body's shape."""

from __future__ import annotations

import json

import httpx
import pytest
from quart import Quart

from service.api.problems import problem_body
from tests.conftest import bearer, user_token

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}


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


async def test_unexpected_exception_is_generic_500(app: Quart, client: httpx.AsyncClient) -> None:
    from service.security.authn import public

    @public
    async def boom() -> str:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_url_rule("/boom", "boom", boom)
    r = await client.get("/boom")
    body = assert_problem(r, 500)
    assert "secret internals" not in r.text and body["detail"] == "An unexpected error occurred."


def test_problem_body_shape() -> None:
    body = json.loads(problem_body(429, detail="slow down"))
    assert (
        body["status"] == 429
        and body["title"] == "Too Many Requests"
        and body["detail"] == "slow down"
    )
