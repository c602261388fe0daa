"""Notes: Create / Update / Public. `id`, owner, `version` and timestamps are never
writable: they are not fields of the input models, and unknown fields are rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from .common import Body, Out, PageQuery, StrictIn, Timestamp, Title, Uuid, iso

if TYPE_CHECKING:  # the row's shape only: models never call the store
    from ..store.notes import NoteRow

Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]


def _unique_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=10), AfterValidator(_unique_tags)]


class NoteCreate(StrictIn):
    title: Title
    body: Body = ""
    tags: Tags = Field(default_factory=list)


class NoteUpdate(StrictIn):
    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None

    @model_validator(mode="after")
    def _something(self) -> NoteUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one of title, body, tags is required")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class NotePublic(Out):
    id: Uuid
    title: str
    body: str
    tags: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    version: int

    @classmethod
    def from_row(cls, note: NoteRow) -> NotePublic:
        return cls(
            id=note.id,
            title=note.title,
            body=note.body,
            tags=note.tags,
            created_at=iso(note.created_us),
            updated_at=iso(note.updated_us),
            version=note.version,
        )


class NoteQuery(PageQuery):
    tag: Tag | None = None
