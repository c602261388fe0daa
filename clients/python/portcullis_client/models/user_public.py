from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.user_public_role import UserPublicRole
from typing import cast
from uuid import UUID
import datetime






T = TypeVar("T", bound="UserPublic")



@_attrs_define
class UserPublic:
    """ 
        Attributes:
            created_at (datetime.datetime):
            disabled (bool):
            id (UUID):
            role (UserPublicRole):
            username (str):
     """

    created_at: datetime.datetime
    disabled: bool
    id: UUID
    role: UserPublicRole
    username: str





    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        disabled = self.disabled

        id = str(self.id)

        role = self.role.value

        username = self.username


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "created_at": created_at,
            "disabled": disabled,
            "id": id,
            "role": role,
            "username": username,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        disabled = d.pop("disabled")

        id = UUID(d.pop("id"))




        role = UserPublicRole(d.pop("role"))




        username = d.pop("username")

        user_public = cls(
            created_at=created_at,
            disabled=disabled,
            id=id,
            role=role,
            username=username,
        )

        return user_public

