"""Errors and their HTTP answers.

The tree, with the status each maps to (RFC 9457 problem details unless noted)::

    ApiError
    ├── BadRequest               400  unparseable input
    ├── Unauthorized             401  no token / bad token (WWW-Authenticate: Bearer ...)
    ├── Forbidden                403  insufficient scope, blocked client
    ├── NotFound                 404  missing or not the caller's
    ├── MethodNotAllowed         405
    ├── Conflict                 409  unique conflict
    ├── PreconditionFailed       412  If-Match mismatch
    ├── PayloadTooLarge          413
    ├── UnsupportedMediaType     415
    ├── ValidationFailed         422  with "errors"
    ├── TooManyRequests          429  with one Retry-After
    └── ServiceUnavailable       503  with Retry-After
    OAuthError                   400/401  RFC 6749 §5.2 body, token endpoint only

Werkzeug's HTTP exceptions, quart-schema's validation errors and unexpected exceptions
are mapped onto the same shapes by `register_error_handlers`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from .context import request_info

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://portcullis.dev/problems/"
log = logging.getLogger("service.errors")


class ApiError(Exception):
    status = 500
    code = "internal"
    detail = "An unexpected error occurred."

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


class BadRequest(ApiError):
    status, code, detail = 400, "bad-request", "The request could not be parsed."


class Unauthorized(ApiError):
    status, code, detail = 401, "unauthorized", "A valid bearer token is required."

    def __init__(self, detail: str | None = None, *, error: str | None = None) -> None:
        challenge = 'Bearer realm="portcullis"'
        if error is not None:
            challenge += f', error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})
        self.reason = error


class Forbidden(ApiError):
    status, code, detail = 403, "forbidden", "You are not allowed to do this."


class InsufficientScope(Forbidden):
    code = "insufficient-scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"This needs the '{scope}' scope.",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="portcullis", error="insufficient_scope", scope="{scope}"'
                )
            },
        )


class ClientBlocked(Forbidden):
    code = "client-blocked"
    detail = "This client is temporarily blocked after repeated failures."


class NotFound(ApiError):
    status, code, detail = 404, "not-found", "No such resource."


class MethodNotAllowed(ApiError):
    status, code, detail = 405, "method-not-allowed", "This method is not allowed here."


class Conflict(ApiError):
    status, code, detail = 409, "conflict", "The resource already exists."


class PreconditionFailed(ApiError):
    status, code, detail = 412, "precondition-failed", "The resource has changed (If-Match)."


class PayloadTooLarge(ApiError):
    status, code, detail = 413, "payload-too-large", "The request body is too large."


class UnsupportedMediaType(ApiError):
    status, code, detail = 415, "unsupported-media-type", "The request body must be JSON."


class ValidationFailed(ApiError):
    status, code, detail = 422, "validation-failed", "The request failed validation."


class TooManyRequests(ApiError):
    status, code, detail = 429, "rate-limited", "Too many requests; retry later."

    def __init__(self, retry_after: int, *, policy: str = "default") -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})
        self.policy = policy


class ServiceUnavailable(ApiError):
    status, code, detail = 503, "unavailable", "The service is temporarily unavailable."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class OAuthError(Exception):
    """RFC 6749 §5.2 error of the token endpoint."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


# Rendering ------------------------------------------------------------------


def problem_body(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
) -> bytes:
    """The RFC 9457 JSON body; usable from ASGI middleware too."""
    info = request_info()
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": _TYPE_BASE + (code or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "request_id": info.request_id if info else None,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return json.dumps(body, ensure_ascii=False).encode()


def problem_response(error: ApiError) -> Response:
    response = Response(
        problem_body(error.status, code=error.code, detail=error.detail, errors=error.errors),
        status=error.status,
        content_type=PROBLEM_JSON,
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def oauth_response(error: OAuthError) -> Response:
    response = Response(
        json.dumps({"error": error.error, "error_description": error.description}),
        status=error.status,
        content_type="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="portcullis"'
    return response


def pydantic_errors(exc: Exception) -> list[dict[str, Any]]:
    """`[{"loc", "msg"}]` from a pydantic ValidationError, never echoing input values."""
    raw = getattr(exc, "errors", None)
    if not callable(raw):
        return [{"loc": [], "msg": "invalid input"}]
    out = []
    for item in raw(include_url=False, include_input=False, include_context=False):
        out.append({"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "invalid"))})
    return out


_WERKZEUG_MAP: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
}


def register_error_handlers(app: Quart) -> None:
    from quart_schema import RequestSchemaValidationError

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return problem_response(error)

    @app.errorhandler(OAuthError)
    async def _oauth_error(error: OAuthError) -> Response:
        return oauth_response(error)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(error: RequestSchemaValidationError) -> Response:
        return problem_response(ValidationFailed(errors=pydantic_errors(error.validation_error)))

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        kind = _WERKZEUG_MAP.get(status)
        if kind is None:
            problem = ApiError(HTTPStatus(status).phrase)
            problem.status, problem.code = status, "error"
        else:
            problem = kind()
        response = problem_response(problem)
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.error("unhandled exception", exc_info=error)
        return problem_response(ApiError())
