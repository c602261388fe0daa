from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.external_public_role import ExternalPublicRole
from typing import cast






T = TypeVar("T", bound="ExternalPublic")



@_attrs_define
class ExternalPublic:
    """ The profile of a subject of an external issuer: `id` is its principal key here
    (from the issuer and its `sub`), never a local user's id; `sub` is the provider's.

        Attributes:
            client_id (str):
            id (str):
            issuer (str):
            role (ExternalPublicRole):
            scopes (list[str]):
            sub (str):
     """

    client_id: str
    id: str
    issuer: str
    role: ExternalPublicRole
    scopes: list[str]
    sub: str





    def to_dict(self) -> dict[str, Any]:
        client_id = self.client_id

        id = self.id

        issuer = self.issuer

        role = self.role.value

        scopes = self.scopes



        sub = self.sub


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "client_id": client_id,
            "id": id,
            "issuer": issuer,
            "role": role,
            "scopes": scopes,
            "sub": sub,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        client_id = d.pop("client_id")

        id = d.pop("id")

        issuer = d.pop("issuer")

        role = ExternalPublicRole(d.pop("role"))




        scopes = cast(list[str], d.pop("scopes"))


        sub = d.pop("sub")

        external_public = cls(
            client_id=client_id,
            id=id,
            issuer=issuer,
            role=role,
            scopes=scopes,
            sub=sub,
        )

        return external_public

