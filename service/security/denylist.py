"""In-memory denylist of revoked access tokens (`jti`) and login sessions (`sid`), and of
disabled users and clients (kept whole by `domain/disabled.py`).

Every process holds the whole list (entries expire with the longest-lived token they
could concern), filled from the signals table at start and kept current by the signal
bus (late-committing rows included), so the per-request check is two dict look-ups and
never touches SQL.
"""

from __future__ import annotations

import time

from .tokens import Principal


class Denylist:
    def __init__(self) -> None:
        self.jtis: dict[str, float] = {}
        self.sids: dict[str, float] = {}
        self.disabled_users: frozenset[str] = frozenset()
        self.disabled_clients: frozenset[str] = frozenset()

    def revoke_jti(self, jti: str, until: float) -> None:
        self.jtis[jti] = max(until, self.jtis.get(jti, 0))

    def revoke_sid(self, sid: str, until: float) -> None:
        self.sids[sid] = max(until, self.sids.get(sid, 0))

    def is_revoked(self, principal: Principal) -> bool:
        if principal.jti in self.jtis:
            return True
        return principal.sid is not None and principal.sid in self.sids

    def is_disabled(self, principal: Principal) -> bool:
        """Whether the token's local user or client is disabled (external subjects are
        their issuer's to disable)."""
        if principal.is_external:
            return False
        if principal.is_client:
            return principal.client_id in self.disabled_clients
        return principal.sub in self.disabled_users

    def purge(self, now: float | None = None) -> None:
        now = now or time.time()
        for table in (self.jtis, self.sids):
            for key in [k for k, until in table.items() if until < now]:
                del table[key]
