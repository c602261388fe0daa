from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="AuditEvent")



@_attrs_define
class AuditEvent:
    """ 
        Attributes:
            actor (None | str):
            event (str):
            id (int):
            ip (None | str):
            target (None | str):
            ts (datetime.datetime):
     """

    actor: None | str
    event: str
    id: int
    ip: None | str
    target: None | str
    ts: datetime.datetime





    def to_dict(self) -> dict[str, Any]:
        actor: None | str
        actor = self.actor

        event = self.event

        id = self.id

        ip: None | str
        ip = self.ip

        target: None | str
        target = self.target

        ts = self.ts.isoformat()


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "actor": actor,
            "event": event,
            "id": id,
            "ip": ip,
            "target": target,
            "ts": ts,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_actor(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        actor = _parse_actor(d.pop("actor"))


        event = d.pop("event")

        id = d.pop("id")

        def _parse_ip(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        ip = _parse_ip(d.pop("ip"))


        def _parse_target(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        target = _parse_target(d.pop("target"))


        ts = datetime.datetime.fromisoformat(d.pop("ts"))




        audit_event = cls(
            actor=actor,
            event=event,
            id=id,
            ip=ip,
            target=target,
            ts=ts,
        )

        return audit_event

