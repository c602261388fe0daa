"""Administration views."""

from __future__ import annotations

from .common import Out


class AuditEvent(Out):
    id: int
    ts: str
    event: str
    actor: str | None
    target: str | None
    ip: str | None


class BlockOut(Out):
    ip: str
    until: str
    reason: str
