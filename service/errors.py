"""The exception tree of the service, each kind with the HTTP status it maps to.

The tree, with the status each maps to (RFC 9457 problem details unless noted)::

    ApiError
    ├── BadRequest               400  unparseable input
    ├── Unauthorized             401  no token / bad token (WWW-Authenticate: Bearer ...)
    │   └── InactivePrincipal    401  a valid token whose user or client is gone
    ├── Forbidden                403  not allowed
    │   ├── InsufficientScope    403  the token lacks the route's scope
    │   └── ClientBlocked        403  blocked after repeated failures
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

No framework import here: `service.api.problems` renders these (and Werkzeug's HTTP
exceptions, quart-schema's validation errors and unexpected exceptions) as responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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


class InactivePrincipal(Unauthorized):
    """A valid token whose user or client was disabled or deleted since it was issued."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_token")


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
