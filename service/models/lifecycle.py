"""Bodies of the account and client lifecycle routes: a user's password change and
deletion, and the admin view and changes of OAuth clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from .common import Out, Secret, StrictIn, iso
from .users import Scope

if TYPE_CHECKING:  # the rows' shape only: models never call the store
    from ..store.users import ClientRow


class PasswordChange(StrictIn):
    current_password: Secret
    new_password: Secret


class AccountDeletion(StrictIn):
    password: Secret


class ClientPatch(StrictIn):
    disabled: bool | None = None
    scopes: list[Scope] | None = Field(default=None, min_length=1, max_length=3)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("scopes must be unique")
        return value

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class ClientAdmin(Out):
    """A client as administrators see it: never its secret."""

    client_id: str
    name: str
    scopes: list[str]
    disabled: bool
    created_at: str

    @classmethod
    def from_row(cls, client: ClientRow) -> ClientAdmin:
        return cls(
            client_id=client.client_id,
            name=client.name,
            scopes=client.scopes.split(),
            disabled=bool(client.disabled),
            created_at=iso(client.created_us),
        )


class ClientSecret(Out):
    """A rotated secret, shown only in this answer."""

    client_id: str
    client_secret: str
