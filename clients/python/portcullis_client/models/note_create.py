from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="NoteCreate")



@_attrs_define
class NoteCreate:
    """ 
        Attributes:
            title (str):
            body (str | Unset):  Default: ''.
            tags (list[str] | Unset):
     """

    title: str
    body: str | Unset = ''
    tags: list[str] | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        title = self.title

        body = self.body

        tags: list[str] | Unset = UNSET
        if not isinstance(self.tags, Unset):
            tags = self.tags




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "title": title,
        })
        if body is not UNSET:
            field_dict["body"] = body
        if tags is not UNSET:
            field_dict["tags"] = tags

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        title = d.pop("title")

        body = d.pop("body", UNSET)

        tags = cast(list[str], d.pop("tags", UNSET))


        note_create = cls(
            title=title,
            body=body,
            tags=tags,
        )

        return note_create

