from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
from uuid import UUID
import datetime






T = TypeVar("T", bound="NotePublic")



@_attrs_define
class NotePublic:
    """ 
        Attributes:
            body (str):
            created_at (datetime.datetime):
            id (UUID):
            tags (list[str]):
            title (str):
            updated_at (datetime.datetime):
            version (int):
     """

    body: str
    created_at: datetime.datetime
    id: UUID
    tags: list[str]
    title: str
    updated_at: datetime.datetime
    version: int





    def to_dict(self) -> dict[str, Any]:
        body = self.body

        created_at = self.created_at.isoformat()

        id = str(self.id)

        tags = self.tags



        title = self.title

        updated_at = self.updated_at.isoformat()

        version = self.version


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "body": body,
            "created_at": created_at,
            "id": id,
            "tags": tags,
            "title": title,
            "updated_at": updated_at,
            "version": version,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        body = d.pop("body")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        id = UUID(d.pop("id"))




        tags = cast(list[str], d.pop("tags"))


        title = d.pop("title")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        version = d.pop("version")

        note_public = cls(
            body=body,
            created_at=created_at,
            id=id,
            tags=tags,
            title=title,
            updated_at=updated_at,
            version=version,
        )

        return note_public

