"""In-memory denylist of revoked access tokens (`jti`), login sessions (`sid`), a
subject's tokens issued before a change (`subject`: a client disabled or narrowed), and
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
        # sub -> {(last exp covered, scopes still allowed): entry expiry}
        self.subjects: dict[str, dict[tuple[int, frozenset[str]], float]] = {}

    def revoke_jti(self, jti: str, until: float) -> None:
        self.jtis[jti] = max(until, self.jtis.get(jti, 0))

    def revoke_sid(self, sid: str, until: float) -> None:
        self.sids[sid] = max(until, self.sids.get(sid, 0))

    def revoke_subject(
        self, sub: str, *, exp_until: int, keep: frozenset[str], until: float
    ) -> None:
        """Refuse `sub`'s tokens expiring by `exp_until` (issued before the change) that
        carry a scope outside `keep` (empty: every such token)."""
        entries = self.subjects.setdefault(sub, {})
        entries[(exp_until, keep)] = max(until, entries.get((exp_until, keep), 0))

    def is_revoked(self, principal: Principal) -> bool:
        if principal.jti in self.jtis:
            return True
        if principal.sid is not None and principal.sid in self.sids:
            return True
        entries = self.subjects.get(principal.sub)
        return entries is not None and any(
            principal.exp <= exp_until and not principal.scopes <= keep
            for exp_until, keep in entries
        )

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
        for sub, entries in list(self.subjects.items()):
            for entry in [e for e, until in entries.items() if until < now]:
                del entries[entry]
            if not entries:
                del self.subjects[sub]
