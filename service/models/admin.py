"""Administration views: audit events and client blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .common import Out, Timestamp, iso

if TYPE_CHECKING:  # the rows' shape only: models never call the store
    from ..store.audit import AuditRow
    from ..store.signals import BlockRow


class AuditEvent(Out):
    id: int
    ts: Timestamp
    event: str
    actor: str | None
    target: str | None
    ip: str | None

    @classmethod
    def from_row(cls, event: AuditRow) -> AuditEvent:
        return cls(
            id=event.id,
            ts=iso(event.ts_us),
            event=event.event,
            actor=event.actor,
            target=event.target,
            ip=event.ip,
        )


class BlockOut(Out):
    ip: str
    until: Timestamp
    reason: str

    @classmethod
    def from_row(cls, block: BlockRow) -> BlockOut:
        return cls(ip=block.ip, until=iso(block.until_us), reason=block.reason)
