"""The body limit: declared and chunked bodies over the cap, CL+TE refused, and an early
answer that waits for the rest of a bounded body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, client_for, user_token
from tests.test_problems import assert_problem


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "jsonuser"))


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
    from service.middleware import body

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
    answering = asyncio.create_task(body.watched(app, scope, receive, send, 1000))
    for _ in range(20):
        await asyncio.sleep(0)
    assert ("sent", "http.response.start") not in log  # held: the body is not all in
    await incoming.put({"type": "http.request", "body": b"x" * 10, "more_body": False})
    await answering
    assert log.index(("received", False)) < log.index(("sent", "http.response.start"))
