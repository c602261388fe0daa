"""Users, clients and the token endpoint's answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .common import Name, Out, Secret, StrictIn, Timestamp, Uuid, iso

if TYPE_CHECKING:  # the rows' shape only: models never call the store
    from ..store.users import ClientRow, UserRow

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{3,32}$")]
# Names that read as the service, its operators or an OAuth client id (`c_...`).
RESERVED_USERNAMES = frozenset({"admin", "administrator", "root", "portcullis"})
RESERVED_PREFIXES = ("c_",)
Role = Literal["user", "admin"]
Scope = Literal["notes:read", "notes:write", "admin"]
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "user": frozenset({"notes:read", "notes:write"}),
    "admin": frozenset({"notes:read", "notes:write", "admin"}),
}
ALL_SCOPES = ROLE_SCOPES["admin"]


def username_problem(username: str) -> str | None:
    if username in RESERVED_USERNAMES or username.startswith(RESERVED_PREFIXES):
        return "this username is reserved"
    return None


class RegisterIn(StrictIn):
    username: Username
    password: Secret

    @field_validator("username")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        problem = username_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class UserPublic(Out):
    model_config = ConfigDict(extra="forbid", frozen=True)  # one per cached row, shared

    id: Uuid
    username: str
    role: Role
    disabled: bool
    created_at: Timestamp

    @classmethod
    def from_row(cls, user: UserRow) -> UserPublic:
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            disabled=bool(user.disabled),
            created_at=iso(user.created_us),
        )


class ClientPublic(Out):
    model_config = ConfigDict(extra="forbid", frozen=True)  # one per cached row, shared

    client_id: str
    name: str
    scopes: list[str]

    @classmethod
    def from_row(cls, client: ClientRow) -> ClientPublic:
        return cls(client_id=client.client_id, name=client.name, scopes=client.scopes.split())


class UserPatch(StrictIn):
    disabled: bool | None = None
    role: Role | None = None

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class ClientCreate(StrictIn):
    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True})
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: refuse requests without a proof

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("scopes must be unique")
        return value


class ClientCreated(Out):
    client_id: str
    name: str
    scopes: list[str]
    client_secret: str


class ExternalPublic(Out):
    """The profile of a subject of an external issuer: `id` is its principal key here
    (from the issuer and its `sub`), never a local user's id; `sub` is the provider's."""

    issuer: str
    id: str
    sub: str
    client_id: str
    role: Role
    scopes: list[str]


class TokenForm(BaseModel):
    """RFC 6749 token request (application/x-www-form-urlencoded); documents the form."""

    grant_type: Literal["password", "refresh_token", "client_credentials"]
    username: str | None = None
    password: str | None = None
    refresh_token: str | None = None
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


class RevokeForm(BaseModel):
    """RFC 7009 revocation request (application/x-www-form-urlencoded)."""

    token: str
    token_type_hint: Literal["access_token", "refresh_token"] | None = None


class TokenOut(Out):
    access_token: str
    token_type: Literal["Bearer", "DPoP"] = "Bearer"  # noqa: S105 - RFC 6750 / RFC 9449
    expires_in: int
    scope: str
    refresh_token: str | None = None
