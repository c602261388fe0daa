from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast






T = TypeVar("T", bound="ClientCreated")



@_attrs_define
class ClientCreated:
    """ 
        Attributes:
            client_id (str):
            client_secret (str):
            name (str):
            scopes (list[str]):
     """

    client_id: str
    client_secret: str
    name: str
    scopes: list[str]





    def to_dict(self) -> dict[str, Any]:
        client_id = self.client_id

        client_secret = self.client_secret

        name = self.name

        scopes = self.scopes




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "client_id": client_id,
            "client_secret": client_secret,
            "name": name,
            "scopes": scopes,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        client_id = d.pop("client_id")

        client_secret = d.pop("client_secret")

        name = d.pop("name")

        scopes = cast(list[str], d.pop("scopes"))


        client_created = cls(
            client_id=client_id,
            client_secret=client_secret,
            name=name,
            scopes=scopes,
        )

        return client_created

