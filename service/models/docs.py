"""Shapes the OpenAPI document names that no route model carries: problem details,
OAuth errors, the probes' and discovery documents' answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from .common import Out
from .users import ClientPublic, ExternalPublic, UserPublic


class ProblemItem(BaseModel):
    """One failed check of a 422 answer."""

    loc: list[str | int] = Field(description="Where: `body`/`query`/`header`, then the field.")
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details: the shape of every error outside the OAuth endpoints."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    request_id: str | None = Field(description="The `X-Request-ID` of the request.")
    errors: list[ProblemItem] | None = Field(default=None, description="Only on 422.")


class OAuthErrorOut(BaseModel):
    """RFC 6749 §5.2 error of the token and revocation endpoints."""

    error: str = Field(
        description="`invalid_request`, `invalid_client`, `invalid_grant`, "
        "`unauthorized_client`, `unsupported_grant_type` or `invalid_scope`."
    )
    error_description: str


class Revoked(Out):
    """RFC 7009: an empty object, whether or not the token was valid."""


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    """`ready`; `degraded` (Redis down: limits per process; or an external issuer's keys
    could not be fetched: cached keys still work), still 200; `unavailable` (503: the
    database is down or behind its migrations, or the process is draining)."""

    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, str] = Field(
        description="`database` and `redis`: `ok` or the failure; `server: draining` on SIGTERM."
    )
    issuers: dict[str, str] | None = Field(
        default=None, description="Each external issuer's key state, when any is configured."
    )


class PublicJWK(BaseModel):
    """A public signing key (RFC 7517); members depend on `kty`."""

    model_config = ConfigDict(extra="allow")
    kty: str
    kid: str
    alg: str
    use: Literal["sig"]


class JWKSet(Out):
    keys: list[PublicJWK]


class Me(RootModel[UserPublic | ClientPublic | ExternalPublic]):
    """The caller: a user, for a client token the client, for an external issuer's
    token its subject."""
