"""The OpenAPI document: valid, true to what the routes enforce, cached and rate-limited."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from quart import Quart

from service.api.openapi import PortcullisOpenAPI
from service.config import Settings
from service.models.users import ALL_SCOPES
from tests.conftest import PASSWORD, SettingsFactory, client_for

BIN = Path(sys.executable).parent
PROBLEM = {"$ref": "#/components/schemas/Problem"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthErrorOut"}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def concrete(path: str) -> str:
    return (
        path.replace("{note_id}", str(uuid.uuid4()))
        .replace("{user_id}", "u1")
        .replace("{ip}", "192.0.2.1")
    )


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


async def test_document_passes_openapi_spec_validator(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    for _, _, operation in operations(doc):
        assert operation["responses"], operation["operationId"]


async def test_security_declared_is_security_enforced(
    doc: dict[str, Any], client: httpx.AsyncClient
) -> None:
    """The document's `security` is derived from each route's auth decision: every
    operation it calls protected answers 401 without a token, and every public one not."""
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    flows = schemes["oauth2"]["flows"]
    assert flows["password"]["tokenUrl"] == flows["clientCredentials"]["tokenUrl"]
    assert flows["password"]["tokenUrl"] == "/v1/auth/token"
    assert set(flows["password"]["scopes"]) == set(flows["clientCredentials"]["scopes"])
    assert set(flows["password"]["scopes"]) == ALL_SCOPES
    public = set()
    for path, method, operation in operations(doc):
        security = operation["security"]
        r = await client.request(method, concrete(path))
        if security == []:
            public.add(path)
            assert r.status_code != 401, path
            unauthorized = operation["responses"].get("401", {"content": {}})
            assert "application/problem+json" not in unauthorized["content"], path
        else:
            assert r.status_code == 401, (method, path)
            assert {"bearer": []} in security and "401" in operation["responses"]
            oauth = next(s["oauth2"] for s in security if "oauth2" in s)
            if path.startswith("/v1/notes") or path.startswith("/v1/admin"):
                assert len(oauth) == 1 and oauth[0] in ALL_SCOPES
    assert "/v1/auth/token" in public and "/v1/users/me" not in public


async def test_every_error_is_problem_json_against_one_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert {"type", "title", "status", "detail", "request_id"} <= set(
        schemas["Problem"]["required"]
    )
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        errors = {s: r for s, r in responses.items() if s >= "400"}
        assert errors or path == "/healthz", (method, path)
        if path not in ("/healthz", "/readyz"):
            assert "503" in errors
        if path.startswith("/v1/"):
            assert "429" in errors and "403" in errors
            assert "RateLimit" in responses["429"]["headers"]
            assert "Retry-After" in responses["429"]["headers"]
        for status, response in errors.items():
            (media, content), *_ = response["content"].items()
            if path in ("/v1/auth/token", "/v1/auth/revoke") and status in ("400", "401"):
                assert (media, content["schema"]) == ("application/json", OAUTH_ERROR)
            elif path == "/readyz":
                assert media == "application/json"
            else:
                assert (media, content["schema"]) == ("application/problem+json", PROBLEM)
            assert response["description"]


async def test_a_real_error_matches_the_problem_schema(
    doc: dict[str, Any], client: httpx.AsyncClient
) -> None:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    problem = doc["components"]["schemas"]["Problem"]
    resolver = {"$defs": doc["components"]["schemas"], **problem}
    text = json.dumps(resolver).replace("#/components/schemas/", "#/$defs/")
    validator = Draft202012Validator(json.loads(text))
    for r in (
        await client.get("/v1/users/me"),
        await client.post("/v1/notes", json={"title": 5}, headers={"Authorization": "Bearer x"}),
        await client.post("/v1/auth/register", json={"username": "x"}),
    ):
        assert r.headers["content-type"] == "application/problem+json"
        validator.validate(r.json())


async def test_token_endpoint_and_headers_are_documented(doc: dict[str, Any]) -> None:
    token = doc["paths"]["/v1/auth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    schemas = doc["components"]["schemas"]
    fields = schemas[form["$ref"].rsplit("/", 1)[1]]
    assert set(fields["properties"]["grant_type"]["enum"]) == {
        "password",
        "refresh_token",
        "client_credentials",
    }
    assert {"username", "password", "scope", "client_id", "client_secret"} <= set(
        fields["properties"]
    )
    assert token["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenOut"
    }
    assert {"400", "401", "413", "415", "429"} <= set(token["responses"])

    headers = doc["components"]["headers"]
    assert {"ETag", "Location", "RateLimit", "RateLimitPolicy", "RetryAfter"} <= set(headers)
    params = {p["name"] for p in doc["components"]["parameters"].values()}
    assert params == {"If-Match", "If-None-Match", "Idempotency-Key"}
    notes, note = doc["paths"]["/v1/notes"], doc["paths"]["/v1/notes/{note_id}"]

    def refs(operation: dict[str, Any]) -> set[str]:
        return {p.get("$ref", "").rsplit("/", 1)[-1] for p in operation.get("parameters", [])}

    assert "IdempotencyKey" in refs(notes["post"])
    assert {"Location", "ETag"} <= set(notes["post"]["responses"]["201"]["headers"])
    assert "IfMatch" in refs(note["patch"]) and "IfMatch" in refs(note["delete"])
    assert "IfNoneMatch" in refs(note["get"]) and "304" in note["get"]["responses"]
    assert "ETag" in note["get"]["responses"]["200"]["headers"]
    assert {"412", "404"} <= set(note["patch"]["responses"])
    assert "409" in doc["paths"]["/v1/auth/register"]["post"]["responses"]


async def test_tags_per_resource_and_readable_operation_ids(doc: dict[str, Any]) -> None:
    declared = {t["name"] for t in doc["tags"]}
    assert declared == {"auth", "users", "notes", "admin", "ops"}
    ids = {}
    for path, method, operation in operations(doc):
        (tag,) = operation["tags"]
        assert tag in declared
        if path.startswith("/v1/"):
            assert path.split("/")[2] == tag
        op_id = operation["operationId"]
        assert op_id.isalnum() and op_id[0].islower(), op_id
        assert not op_id.lower().startswith(method + method), op_id
        ids[(method, path)] = op_id
    assert len(set(ids.values())) == len(ids)
    assert ids[("get", "/v1/notes/{note_id}")] == "getNote"
    assert ids[("post", "/v1/auth/token")] == "issueToken"
    assert ids[("get", "/v1/users/me")] == "getMe"
    assert ids[("delete", "/v1/admin/blocks/{ip}")] == "liftBlock"


async def test_every_answer_with_a_body_names_its_model(doc: dict[str, Any]) -> None:
    """Typed clients need named schemas; a route that documents no answer gets a generic
    JSON object, and this list shows which routes still do."""
    untyped = set()
    for path, method, operation in operations(doc):
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                if "$ref" not in media["schema"]:
                    untyped.add((method, path, status))
    assert untyped == {("get", "/.well-known/oauth-authorization-server", "200")}


async def test_document_is_built_once_and_served_with_an_etag(
    app: Quart, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = []
    original = PortcullisOpenAPI.schema

    def counting(self: PortcullisOpenAPI) -> dict[str, Any]:
        builds.append(1)
        return original(self)

    monkeypatch.setattr(PortcullisOpenAPI, "schema", counting)
    burst = await asyncio.gather(*(client.get("/openapi.json") for _ in range(10)))
    first = burst[0]
    for again in [*burst, *[await client.get("/openapi.json") for _ in range(3)]]:
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
    assert builds == [1]  # once, even for a burst of first requests; never per request
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    r = await client.get("/openapi.json", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = await client.get("/openapi.json", headers={"If-None-Match": '"stale"'})
    assert r.status_code == 200 and r.content == first.content


async def test_openapi_burst_from_one_address_gets_429(settings_factory: SettingsFactory) -> None:
    from service import create_app

    app = create_app(settings_factory(rate_limit_openapi="3/minute"))
    async with app.test_app():
        async with client_for(app, "198.51.100.7") as attacker, client_for(app) as other:
            statuses = [(await attacker.get("/openapi.json")).status_code for _ in range(6)]
            assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}
            r = await attacker.get("/openapi.json")
            assert r.headers["content-type"] == "application/problem+json"
            assert len(r.headers.get_list("retry-after")) == 1
            assert '"openapi";q=3;w=60' in r.headers["ratelimit-policy"]
            assert (await other.get("/openapi.json")).status_code == 200  # per client IP


def test_openapi_limit_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        Settings(_env_file=None, rate_limit_openapi="lots")


async def test_a_generated_client_has_typed_responses(
    app: Quart, doc: dict[str, Any], tmp_path: Path
) -> None:
    """openapi-python-client generates a client from the document; its calls against
    the app return the documented models, problems included."""
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(doc))
    out = tmp_path / "portcullis_client"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            *(str(BIN / "openapi-python-client"), "generate", "--path", str(spec)),
            *("--meta", "none", "--output-path", str(out)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        pkg = importlib.import_module("portcullis_client")
        api = importlib.import_module("portcullis_client.api")
        models = importlib.import_module("portcullis_client.models")
        for name in ("auth.register_user", "auth.issue_token", "users.get_me"):
            importlib.import_module(f"portcullis_client.api.{name}")
        for name in ("notes.create_note", "notes.get_note"):
            importlib.import_module(f"portcullis_client.api.{name}")

        anonymous = pkg.Client(base_url="https://testserver")
        anonymous.set_async_httpx_client(client_for(app))
        user = await api.auth.register_user.asyncio(
            client=anonymous, body=models.RegisterIn(username="generated", password=PASSWORD)
        )
        assert isinstance(user, models.UserPublic) and user.username == "generated"
        token = await api.auth.issue_token.asyncio(
            client=anonymous,
            body=models.TokenForm(
                grant_type=models.TokenFormGrantType.PASSWORD,
                username="generated",
                password=PASSWORD,
            ),
        )
        assert isinstance(token, models.TokenOut) and token.token_type == "Bearer"
        wrong = await api.auth.issue_token.asyncio(
            client=anonymous,
            body=models.TokenForm(
                grant_type=models.TokenFormGrantType.PASSWORD, username="generated", password="x"
            ),
        )
        assert isinstance(wrong, models.OAuthErrorOut) and wrong.error == "invalid_grant"

        authed = pkg.AuthenticatedClient(base_url="https://testserver", token=token.access_token)
        transport = client_for(app)
        transport.headers["Authorization"] = f"Bearer {token.access_token}"
        authed.set_async_httpx_client(transport)
        me = await api.users.get_me.asyncio(client=authed)
        assert isinstance(me, models.UserPublic) and me.id == user.id
        created = await api.notes.create_note.asyncio_detailed(
            client=authed, body=models.NoteCreate(title="typed"), idempotency_key="k-1"
        )
        assert created.status_code == 201 and isinstance(created.parsed, models.NotePublic)
        missing = await api.notes.get_note.asyncio(client=authed, note_id=str(uuid.uuid4()))
        assert isinstance(missing, models.Problem) and missing.status == 404
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("portcullis_client")]:
            del sys.modules[name]


def test_a_header_must_come_from_the_shared_list() -> None:
    """A typo in a route's header name fails at import, not silently in the document."""
    from service.api.documented import request_headers, responds

    with pytest.raises(KeyError, match="X-Etag"):
        responds(200, headers=("X-Etag",))
    with pytest.raises(KeyError, match="If-Matches"):
        request_headers("If-Matches")
