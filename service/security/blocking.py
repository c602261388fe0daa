"""Automatic blocking of abusive client addresses.

Failures (401, 403 and 404 on /v1, failed logins) are counted per client key (the
address; for IPv6 its `PORTCULLIS_IPV6_PREFIX` network, see `proxies.client_key`) with the
same GCRA engine as the rate limits (Redis when configured). When an address exceeds
`PORTCULLIS_BLOCK_AFTER` it is blocked for `PORTCULLIS_BLOCK_SECONDS`, doubling on each
repeat up to a day. The block is written to the database (one winner even when several
processes cross the line together, so `client.blocked` is emitted once) and announced
to every process through the signals table; the per-request check is a dict look-up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..config import Limit
from .proxies import Network, client_key, parse_ip
from .ratelimit import Check, Limiter


class BlockList:
    def __init__(self) -> None:
        self.until: dict[str, tuple[float, str]] = {}

    def add(self, ip: str, until: float, reason: str) -> None:
        self.until[ip] = (until, reason)

    def remove(self, ip: str) -> None:
        self.until.pop(ip, None)

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


class FailureCounter:
    """Counts failures per client key; says when a key has crossed the threshold.
    Exemptions test the real address, so an exempt host is never refused for the
    failures of its IPv6 neighbours."""

    def __init__(
        self,
        limiter: Limiter,
        limits: Sequence[Limit],
        exempt: Sequence[Network],
        ipv6_prefix: int = 64,
    ):
        self.limiter = limiter
        self.limits = tuple(limits)
        self.exempt = tuple(exempt)
        self.ipv6_prefix = ipv6_prefix

    def key(self, ip: str) -> str:
        """What limits, failure counts and blocks of `ip` are keyed by."""
        return client_key(ip, self.ipv6_prefix)

    def is_exempt(self, ip: str) -> bool:
        addr = parse_ip(ip)
        if addr is None:
            return True  # not an address (e.g. a unix socket peer): nothing to block
        return any(addr in net for net in self.exempt)

    async def failed(self, ip: str) -> bool:
        """Record one failure of the address `ip`; True when this one crossed the
        threshold for its key."""
        if self.is_exempt(ip):
            return False
        checks = [
            Check(
                key=f"fail:{limit.window}:{self.key(ip)}",
                count=limit.count,
                window=limit.window,
                name="block",
            )
            for limit in self.limits
        ]
        decision = await self.limiter.check(checks)
        return not decision.allowed
