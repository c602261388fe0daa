from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="ClientSecret")



@_attrs_define
class ClientSecret:
    """ A rotated secret, shown only in this answer.

        Attributes:
            client_id (str):
            client_secret (str):
     """

    client_id: str
    client_secret: str





    def to_dict(self) -> dict[str, Any]:
        client_id = self.client_id

        client_secret = self.client_secret


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "client_id": client_id,
            "client_secret": client_secret,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        client_id = d.pop("client_id")

        client_secret = d.pop("client_secret")

        client_secret = cls(
            client_id=client_id,
            client_secret=client_secret,
        )

        return client_secret

