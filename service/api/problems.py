"""Renders every error answer: problem+json (RFC 9457), OAuth errors, and the handlers.

The only place that builds an error response. `register_error_handlers` maps the
exception tree of `service.errors`, Werkzeug's HTTP exceptions, quart-schema's
validation errors, dependency failures (503) and unexpected exceptions onto these
shapes, and logs and counts authentication failures where they are answered;
the body itself comes from `service.problem`, which the ASGI middleware uses too.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from quart import Quart, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from ..errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    InactivePrincipal,
    InsufficientScope,
    MethodNotAllowed,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..logging import get_logger, security_event
from ..metrics import Metrics
from ..problem import PROBLEM_JSON, problem_body
from ..security.authn import authentication

log = logging.getLogger("service.errors")
app_log = get_logger("portcullis.app")
__all__ = ["problem_body", "problem_response", "register_error_handlers"]


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


def register_error_handlers(app: Quart, metrics: Metrics) -> None:
    from quart_schema import RequestSchemaValidationError

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return problem_response(error)

    @app.errorhandler(Unauthorized)
    async def _unauthorized(error: Unauthorized) -> Response:
        failure = authentication().failure
        if failure is None and isinstance(error, InactivePrincipal):
            failure = "inactive_principal"
        if failure is not None:
            metrics.auth_failures.labels(failure).inc()
            security_event("auth.invalid_token", reason=failure)
        return problem_response(error)

    @app.errorhandler(InsufficientScope)
    async def _insufficient(error: InsufficientScope) -> Response:
        principal = authentication().principal
        security_event(
            "authz.denied",
            reason="insufficient_scope",
            detail=error.detail,
            principal=principal.sub if principal is not None else None,
        )
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

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(ConnectionError)
    @app.errorhandler(TimeoutError)
    async def _dependency_down(error: Exception) -> Response:
        app_log.error("dependency.unavailable", reason=type(error).__name__, dependency="database")
        return problem_response(ServiceUnavailable("A dependency is unavailable.", retry_after=5))

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.error("unhandled exception", exc_info=error)
        return problem_response(ApiError())
