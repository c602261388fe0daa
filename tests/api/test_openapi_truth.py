"""What the OpenAPI document says matches what the service answers: whole-sentence
summaries, required bodies, typed ids and dates, the installed version, and the 400s and
422s the service really gives (each provoked here and found in the document)."""

from __future__ import annotations

import re
import uuid
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from quart import Quart

from tests.conftest import bearer, client_for, make_admin, user_token


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/openapi.json")).json()
    return body


def documented(doc: dict[str, Any], method: str, path: str) -> set[str]:
    return set(doc["paths"][path][method]["responses"])


async def test_version_comes_from_the_installed_package(doc: dict[str, Any]) -> None:
    assert doc["info"]["version"] == version("portcullis")


async def test_summaries_are_whole_sentences_and_bodies_are_required(doc: dict[str, Any]) -> None:
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            summary = operation["summary"]
            assert summary.endswith((".", ")", "`")), (method, path, summary)
            assert summary.count("(") == summary.count(")"), (method, path, summary)
            assert operation["description"].startswith(summary[:-1]), (method, path)
            if "requestBody" in operation:
                assert operation["requestBody"]["required"] is True, (method, path)
    patch = doc["paths"]["/v1/notes/{note_id}"]["patch"]
    assert "never lost" in patch["description"]  # the sentence the first line cut


async def test_ids_and_dates_are_typed(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name, fields in {
        "NotePublic": {"id": "uuid", "created_at": "date-time", "updated_at": "date-time"},
        "UserPublic": {"id": "uuid", "created_at": "date-time"},
        "AuditEvent": {"ts": "date-time"},
        "BlockOut": {"until": "date-time"},
    }.items():
        for field, fmt in fields.items():
            assert schemas[name]["properties"][field]["format"] == fmt, (name, field)
    assert schemas["ClientCreate"]["properties"]["scopes"]["uniqueItems"] is True
    assert "token" in schemas["RevokeForm"]["required"]


async def test_every_400_and_422_the_service_gives_is_documented(
    app: Quart, client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    admin = bearer(await make_admin(app, client))
    async with client_for(app, "198.51.100.4") as other:
        user = bearer(await user_token(other, "someone"))
        foreign = (await other.get("/v1/notes?limit=1", headers=user)).json()
    # a cursor from another list, or altered, on each of the paged lists
    r = await client.post("/v1/notes", json={"title": "a", "body": "", "tags": []}, headers=admin)
    await client.post("/v1/notes", json={"title": "b", "body": "", "tags": []}, headers=admin)
    cursor = (await client.get("/v1/notes?limit=1", headers=admin)).json()["next_cursor"]
    assert cursor and foreign["next_cursor"] is None
    for path in ("/v1/notes", "/v1/admin/users", "/v1/admin/audit", "/v1/admin/blocks"):
        for bad in (cursor[::-1], "x" * 40):
            answer = await client.get(path, params={"cursor": bad}, headers=admin)
            assert answer.status_code in (400, 422), (path, answer.text)
            assert str(answer.status_code) in documented(doc, "get", path), path
    # control characters in a path parameter
    for path, method, template in (
        ("/v1/notes/%01", "get", "/v1/notes/{note_id}"),
        ("/v1/notes/a%00b", "delete", "/v1/notes/{note_id}"),
        ("/v1/admin/blocks/%7f", "delete", "/v1/admin/blocks/{ip}"),
    ):
        answer = await client.request(method, path, headers=admin)
        assert answer.status_code == 400, (path, answer.text)
        assert "400" in documented(doc, method, template)
    # an Idempotency-Key used again with another body
    key = {"Idempotency-Key": str(uuid.uuid4()), **admin}
    first = await client.post("/v1/notes", json={"title": "k", "body": "", "tags": []}, headers=key)
    assert first.status_code == 201
    again = await client.post("/v1/notes", json={"title": "K", "body": "", "tags": []}, headers=key)
    assert again.status_code == 422
    post_notes = doc["paths"]["/v1/notes"]["post"]["responses"]["422"]["description"]
    assert re.search(r"Idempotency-Key.*another body", post_notes)
    # duplicate scopes: refused, and the schema says so (uniqueItems)
    dup = await client.post(
        "/v1/admin/clients", json={"name": "d", "scopes": ["admin", "admin"]}, headers=admin
    )
    assert dup.status_code == 422
    assert r.status_code == 201
