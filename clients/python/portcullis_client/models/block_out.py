from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="BlockOut")



@_attrs_define
class BlockOut:
    """ 
        Attributes:
            ip (str):
            reason (str):
            until (datetime.datetime):
     """

    ip: str
    reason: str
    until: datetime.datetime





    def to_dict(self) -> dict[str, Any]:
        ip = self.ip

        reason = self.reason

        until = self.until.isoformat()


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "ip": ip,
            "reason": reason,
            "until": until,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        ip = d.pop("ip")

        reason = d.pop("reason")

        until = datetime.datetime.fromisoformat(d.pop("until"))




        block_out = cls(
            ip=ip,
            reason=reason,
            until=until,
        )

        return block_out

