"""Automatic blocking of abusive client addresses.

Failures (401, 403 and 404 on /v1, failed logins) are counted per client key (the
address; for IPv6 its `PORTCULLIS_IPV6_PREFIX` network, see `proxies.client_key`) with the
same GCRA engine as the rate limits (Redis when configured). When an address exceeds
`PORTCULLIS_BLOCK_AFTER` it is blocked for `PORTCULLIS_BLOCK_SECONDS`, doubling on each
repeat up to a day. A block consumes the failures that caused it (the counter starts
again from zero, here and in Redis), and so does an admin's lift: only a full new
threshold blocks again. The block is written to the database (one winner even when several
processes cross the line together, so `client.blocked` is emitted once) and announced
to every process through the signals table; the per-request check is a dict look-up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..config import Limit
from .proxies import ClientKeys, Network, parse_ip
from .ratelimit import Check, Limiter


class BlockList:
    """Blocked addresses, and for each address the id of the last block or unblock
    signal applied, so that an older one arriving late cannot undo a newer one."""

    def __init__(self) -> None:
        self.until: dict[str, tuple[float, str]] = {}
        self.versions: dict[str, tuple[int, float]] = {}  # ip -> (signal id, keep until)

    def _newer(self, ip: str, signal_id: int | None, keep_until: float) -> bool:
        if signal_id is None:
            return True
        seen = self.versions.get(ip)
        if seen is not None and seen[0] >= signal_id:
            return False
        self.versions[ip] = (signal_id, max(keep_until, seen[1] if seen else 0.0))
        return True

    def add(self, ip: str, until: float, reason: str, signal_id: int | None = None) -> bool:
        """Block `ip`; False when a newer block or unblock was applied already."""
        if not self._newer(ip, signal_id, until):
            return False
        self.until[ip] = (until, reason)
        return True

    def remove(self, ip: str, signal_id: int | None = None, keep_until: float = 0.0) -> bool:
        """Lift a block; False when a newer block or unblock was applied already."""
        if not self._newer(ip, signal_id, keep_until):
            return False
        self.until.pop(ip, None)
        return True

    def is_blocked(self, ip: str, now: float | None = None) -> bool:
        entry = self.until.get(ip)
        if entry is None:
            return False
        if entry[0] <= (now or time.time()):
            del self.until[ip]
            return False
        return True

    def purge(self) -> None:
        now = time.time()
        for ip in [ip for ip, (until, _) in self.until.items() if until <= now]:
            del self.until[ip]
        for ip in [ip for ip, (_, keep) in self.versions.items() if keep <= now]:
            del self.versions[ip]


class FailureCounter:
    """Counts failures per client key; says when a key has crossed the threshold.
    Exemptions test the real address, so an exempt host is never refused for the
    failures of its IPv6 neighbours."""

    def __init__(
        self,
        limiter: Limiter,
        limits: Sequence[Limit],
        exempt: Sequence[Network],
        client_keys: ClientKeys,
    ):
        self.limiter = limiter
        self.limits = tuple(limits)
        self.exempt = tuple(exempt)
        self.client_keys = client_keys

    def key(self, ip: str) -> str:
        """What limits, failure counts and blocks of `ip` are keyed by."""
        return self.client_keys(ip)

    def is_exempt(self, ip: str) -> bool:
        addr = parse_ip(ip)
        if addr is None:
            return True  # not an address (e.g. a unix socket peer): nothing to block
        return any(addr in net for net in self.exempt)

    def _checks(self, ip: str) -> list[Check]:
        return [
            Check(
                key=f"fail:{limit.window}:{self.key(ip)}",
                count=limit.count,
                window=limit.window,
                name="block",
            )
            for limit in self.limits
        ]

    async def reset(self, ip: str) -> None:
        """Forget the failures of `ip` everywhere (Redis and this process): a block
        consumes the failures that caused it, and lifting a block forgives them."""
        await self.limiter.forget(self._checks(ip))

    def reset_here(self, ip: str) -> None:
        """Forget the failures of `ip` counted in this process's memory."""
        self.limiter.memory.forget(self._checks(ip))

    async def failed(self, ip: str) -> bool:
        """Record one failure; True when this one crossed the threshold."""
        if self.is_exempt(ip):
            return False
        decision = await self.limiter.check(self._checks(ip))
        return not decision.allowed
