"""The OpenAPI document: quart-schema's, completed from what each route declares.

A route's auth decision, rate limits, body, query and path parameters decide its
`security`, its problem+json error responses and its RateLimit headers here, so the
document cannot drift from what is enforced; `documented.py` adds the rest. The document
is served from `openapi_document.py`.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from pydantic.json_schema import models_json_schema
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, OpenAPIProvider, Tag
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    DataSource,
)
from werkzeug.routing import Rule

from ..models.docs import OAuthErrorOut, Problem
from ..security.authn import AUTH_ATTRIBUTE
from ..version import package_version
from .declared import limits_for
from .documented import DOCS_ATTRIBUTE, REQUEST_HEADERS, RESPONSE_HEADERS, RouteDocs

TOKEN_URL = "/v1/auth/token"  # noqa: S105 - a path, not a secret
PROBES = frozenset({"/healthz", "/readyz"})  # never queued behind the in-flight cap
SCOPE_TEXT = {
    "notes:read": "Read your notes.",
    "notes:write": "Create, change and delete your notes.",
    "admin": "Administer users, clients and blocks.",
}
DESCRIPTION = """\
A secure-by-default JSON API. Get a token from `POST /v1/auth/token` (the **Authorize**
button does it with the `password` or `client_credentials` grant), then send it as
`Authorization: Bearer <token>`.

Errors are RFC 9457 problem details (`application/problem+json`, schema `Problem`), except
the RFC 6749 errors of the OAuth endpoints. Rate-limited routes send the IETF `RateLimit`
and `RateLimit-Policy` fields; a 429 or 503 carries `Retry-After`.
"""
TAGS: list[Tag | dict[Any, Any]] = [
    {"name": "auth", "description": "Registration, the OAuth 2 token endpoint, revocation."},
    {"name": "users", "description": "The caller's own profile."},
    {"name": "notes", "description": "The caller's notes (`notes:read`, `notes:write`)."},
    {"name": "admin", "description": "Administration (`admin` scope)."},
    {"name": "ops", "description": "Probes and discovery documents."},
]
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearer_format": "JWT",
    },
    "dpop": {"type": "http", "scheme": "dpop"},
    "oauth2": {
        "type": "oauth2",
        "flows": {
            "password": {"tokenUrl": TOKEN_URL, "refreshUrl": TOKEN_URL, "scopes": SCOPE_TEXT},
            "clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": SCOPE_TEXT},
        },
    },
}
# quart-schema 0.25 refuses a `description` in a security scheme (not a dataclass field).
_SCHEME_TEXT = {
    "bearer": "An RFC 9068 access token from the token endpoint.",
    "dpop": "A DPoP-bound token (RFC 9449): `Authorization: DPoP <token>` and a `DPoP` proof.",
    "oauth2": "The token endpoint, as a client uses it (password or client credentials).",
}

_VERBS = tuple("get list create patch update delete register issue revoke lift".split())
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthErrorOut"}
_STR: dict[str, Any] = {"type": "string"}
_HEADER_SCHEMA: dict[str, dict[str, Any]] = {"Retry-After": {"type": "integer", "minimum": 1}}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")


def summary_and_description(func: Callable[..., Any]) -> tuple[str, str] | None:
    """The first sentence of the docstring as the summary (quart-schema takes the first
    line, which cuts a wrapped sentence), and the whole docstring as the description."""
    doc = inspect.getdoc(func)
    if not doc:
        return None
    first_paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    summary = _SENTENCE_END.split(first_paragraph, maxsplit=1)[0]
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
    return summary, "\n\n".join(paragraphs)


def _component(name: str) -> str:
    return name.replace("-", "")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class PortcullisOpenAPI(OpenAPIProvider):
    """quart-schema's provider, with security, errors and headers derived per route."""

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        schema["info"]["version"] = package_version()
        components = schema["components"]
        for name, text in _SCHEME_TEXT.items():
            components["securitySchemes"][name]["description"] = text
        _, defs = models_json_schema(
            [(Problem, "serialization"), (OAuthErrorOut, "serialization")],
            ref_template="#/components/schemas/{model}",
        )
        components["schemas"].update(defs["$defs"])
        components["headers"] = {
            _component(name): {"description": text, "schema": _HEADER_SCHEMA.get(name, _STR)}
            for name, text in RESPONSE_HEADERS.items()
        }
        components["parameters"] = {
            _component(name): {"name": name, "in": "header", "required": False, **spec}
            for name, spec in REQUEST_HEADERS.items()
        }
        _lift_models(schema)
        seen: dict[str, str] = {}
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                other = seen.setdefault(operation["operationId"], f"{method} {path}")
                if other != f"{method} {path}":
                    raise ValueError(f"operationId {operation['operationId']} used twice")
        return dict(schema)

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str:  # noqa: ARG002
        explicit: str | None = getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, None)
        if explicit is not None:
            return explicit
        name = _camel(func.__name__)
        return name if name.startswith(_VERBS) else method.lower() + name[:1].upper() + name[1:]

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        for operations in paths.values():
            for method, operation in operations.items():
                operations[method] = self._complete(rule, func, copy.deepcopy(operation))
        return paths, components

    def _complete(
        self, rule: Rule, func: Callable[..., Any], operation: dict[str, Any]
    ) -> dict[str, Any]:
        docs: RouteDocs = getattr(func, DOCS_ATTRIBUTE, None) or RouteDocs()
        blueprints = rule.endpoint.split(".")[:-1]
        operation["tags"] = [blueprints[-1]] if blueprints else ["ops"]
        texts = summary_and_description(func)
        if texts is not None:
            operation["summary"], operation["description"] = texts
        if "requestBody" in operation:  # every route that reads a body needs one
            operation["requestBody"]["required"] = True
        auth = getattr(func, AUTH_ATTRIBUTE, None)
        if auth == "public":
            operation["security"] = []
        else:
            scope = auth.removeprefix("scope:") if auth and auth.startswith("scope:") else None
            oauth2 = {"oauth2": [scope] if scope else []}
            operation["security"] = [{"bearer": []}, {"dpop": []}, oauth2]
        operation["parameters"] += [
            {"$ref": f"#/components/parameters/{_component(name)}"} for name in docs.request_headers
        ]
        if not operation["parameters"]:
            del operation["parameters"]
        nested = [".".join(blueprints[: i + 1]) for i in range(len(blueprints))][::-1]
        limited = bool(limits_for(self._app, rule.endpoint, nested))  # type: ignore[arg-type]
        responses: dict[str, Any] = {}
        for status, response in operation["responses"].items():
            responses[str(status)] = response
        for status, (description, headers) in docs.responses.items():
            response = responses.setdefault(str(status), {"description": ""})
            response["description"] = description or response["description"]
            response.setdefault("headers", {}).update({name: _ref(name) for name in headers})
        if not any(status.startswith("2") for status in responses):
            responses["200"] = {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        scoped = auth is not None and auth.startswith("scope:")
        for status, text in self._problems(rule, func, auth, limited, docs).items():
            responses.setdefault(str(status), _problem(status, text, challenge=scoped))
        for status, text in docs.oauth_errors.items():
            responses[str(status)] = _oauth_error(text)
        for status, response in responses.items():
            if not response["description"]:
                response["description"] = HTTPStatus(int(status)).phrase
            if limited:
                headers = response.setdefault("headers", {})
                headers.update({name: _ref(name) for name in ("RateLimit", "RateLimit-Policy")})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _problems(
        self, rule: Rule, func: Callable[..., Any], auth: str | None, limited: bool, docs: RouteDocs
    ) -> dict[int, str]:
        """The problem+json answers this route can give, each with its causes."""
        causes: dict[int, list[str]] = {}
        body = getattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, None)
        if body is not None:
            if body[1] is DataSource.JSON:
                causes.setdefault(400, []).append("The body is not valid JSON.")
                causes.setdefault(415, []).append("The body is not `application/json`.")
                causes.setdefault(422, []).append("The body fails validation.")
            else:
                causes.setdefault(415, []).append(
                    "The body is not `application/x-www-form-urlencoded`."
                )
            causes.setdefault(413, []).append("The body is over the size limit.")
        query = getattr(func, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None)
        if query is not None:
            causes.setdefault(422, []).append("A query parameter fails validation.")
            if "cursor" in getattr(query, "model_fields", {}):
                causes.setdefault(400, []).append(
                    "The `cursor` was not issued by this list for this caller, or was altered."
                )
        if "Idempotency-Key" in docs.request_headers:
            causes.setdefault(422, []).append(
                "The `Idempotency-Key` was used before with another body."
            )
        if 400 not in docs.oauth_errors and (auth != "public" or rule.rule.startswith("/v1/")):
            # (the OAuth endpoints say it in their own shape)
            causes.setdefault(400, []).append("More than one credential in `Authorization`.")
        if auth != "public":
            causes.setdefault(401, []).append(
                "No bearer token, or one that is invalid, expired or revoked."
            )
            if auth and auth.startswith("scope:"):
                causes.setdefault(403, []).append("The token lacks the required scope.")
        if rule.rule.startswith("/v1/"):
            causes.setdefault(403, []).append("This client is blocked after repeated failures.")
        if rule.arguments:
            causes.setdefault(400, []).append(
                "A path parameter holds control characters, `/`, `\\` or a dot segment."
            )
            causes.setdefault(404, []).append("No such resource, or not the caller's.")
        if limited:
            causes.setdefault(429, []).append("Rate limited; see `Retry-After`.")
        if rule.rule not in PROBES:
            causes.setdefault(503, []).append("Overloaded, or a dependency is down.")
        for status, text in docs.problems.items():
            causes.setdefault(status, []).append(text)
        return {status: " ".join(texts) for status, texts in sorted(causes.items())}


def _ref(header: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{_component(header)}"}


def _problem(status: int, description: str, *, challenge: bool) -> dict[str, Any]:
    """A problem+json answer; `challenge`: a 403 may carry `insufficient_scope`."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }
    if status == 401 or (status == 403 and challenge):
        response["headers"] = {"WWW-Authenticate": _ref("WWW-Authenticate")}
    if status in (429, 503):
        response["headers"] = {"Retry-After": _ref("Retry-After")}
    return response


def _oauth_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _OAUTH_ERROR}}}


def _lift_models(schema: dict[str, Any]) -> None:
    """Request and response models become named components (quart-schema inlines them),
    so generated clients get one class per model instead of one per operation."""
    components = schema["components"]["schemas"]
    for operations in schema["paths"].values():
        for operation in operations.values():
            bodies = [operation.get("requestBody", {})]
            bodies += list(operation["responses"].values())
            for body in bodies:
                for media in body.get("content", {}).values():
                    model = media.get("schema", {})
                    if "title" not in model or "$ref" in model:
                        continue
                    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model["title"]).strip("_")
                    while components.get(name, model) != model:
                        name += "_"
                    components[name] = model
                    media["schema"] = {"$ref": f"#/components/schemas/{name}"}
