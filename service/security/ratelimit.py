"""Rate limiting: declarations, the RateLimit fields, and the limiter that picks an engine.

Limits are declared with quart-rate-limiter's API (`rate_limit`, `limit_blueprint`,
`rate_exempt`, `RateLimit`); its enforcement is not used, because its stores are not
atomic (Redis GET then SET, keys without TTL) and its memory store never evicts. The
atomic GCRA engines are in `gcra.py`.

If Redis is unreachable or hung, the limiter fails open to the per-process memory
engine and logs that at ERROR once per outage. No request waits on Redis longer than
`REDIS_DEADLINE`. A failed or late answer makes Redis suspect: from then on requests go
straight to memory, and one probe, off every request's path, asks Redis again (at most
one every `retry_seconds`) until it answers. In memory each process enforces its share
of every limit, `max(1, count // share)` with `share` the worker processes alive on
this host, so an outage does not hand every process a full fresh budget
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

from quart_rate_limiter import RateLimit

from ..config import Limit
from ..redisclient import warm_up
from .gcra import US, Check, Decision, MemoryEngine, RedisEngine

__all__ = [
    "US",
    "Check",
    "Decision",
    "Limiter",
    "MemoryEngine",
    "NamedLimit",
    "RedisEngine",
    "header_fields",
    "named_limits",
]

log = logging.getLogger("portcullis.ratelimit")
T = TypeVar("T")
# The longest a request waits on Redis: past it Redis counts as down (fail open).
REDIS_DEADLINE = 0.1
PROBE_TIMEOUT = 1.0


@dataclass
class NamedLimit(RateLimit):
    """A quart-rate-limiter RateLimit with an IETF policy name and a key kind
    (`principal`: the token's subject, else the client IP; `ip`: always the IP)."""

    name: str = "default"
    key_kind: str = "principal"

    @property
    def window(self) -> int:
        return int(self.period.total_seconds())


def named_limits(name: str, limits: Sequence[Limit], key_kind: str) -> list[RateLimit]:
    """quart-rate-limiter declarations carrying our policy names."""
    out: list[RateLimit] = []
    for index, limit in enumerate(limits):
        label = name if index == 0 else f"{name}-{limit.window}"
        out.append(
            NamedLimit(limit.count, timedelta(seconds=limit.window), name=label, key_kind=key_kind)
        )
    return out


def _policy_field(policies: tuple[tuple[str, int, int], ...]) -> bytes:
    """`RateLimit-Policy`: each limit's name, quota and window."""
    return ", ".join(f'"{n}";q={c};w={w}' for n, c, w in policies).encode()


def header_fields(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The IETF RateLimit fields of a decision: every policy that applied, and the one
    closest to exhaustion (draft-ietf-httpapi-ratelimit-headers)."""
    states = decision.states
    if len(states) == 1:  # most routes: one policy (no tuple to build, nothing to pick)
        closest = states[0]
        policies = _policy_field(((closest[0], closest[1], closest[2]),))
    else:
        policies = _policy_field(tuple((n, c, w) for n, c, w, _, _ in states))
        closest = min(states, key=lambda s: (s[3] / s[1], -s[4]))
    return [
        (b"ratelimit-policy", policies),
        (b"ratelimit", f'"{closest[0]}";r={closest[3]};t={closest[4]}'.encode()),
    ]


def _share(check: Check, share: int) -> Check:
    """This process's share of a limit while Redis is down."""
    if share <= 1:
        return check
    return replace(check, count=max(1, check.count // share))


class Limiter:
    """Chooses Redis when configured and answering, else memory (fail open)."""

    def __init__(
        self,
        redis_engine: RedisEngine | None,
        *,
        retry_seconds: float = 1.0,
        deadline: float = REDIS_DEADLINE,
    ) -> None:
        self.memory = MemoryEngine()
        self.redis = redis_engine
        self.retry_seconds = retry_seconds
        self.deadline = deadline
        self.share = 1  # worker processes on this host (kept current by the upkeep loop)
        self._probe: asyncio.Task[None] | None = None

    @property
    def redis_suspect(self) -> bool:
        """True from a failed or late Redis answer until a probe is answered."""
        return self._probe is not None

    def _fallback(self, checks: Sequence[Check]) -> list[Check]:
        if self.redis is None:  # no shared state at all: per-process limits, documented
            return list(checks)
        return [_share(c, self.share) for c in checks]

    async def _through_redis(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call`'s result within the deadline, or None: Redis is suspect (a probe is
        running) or this call failed or was late (a probe starts)."""
        if self._probe is not None:
            return None
        try:
            return await asyncio.wait_for(call(), self.deadline)
        except Exception as exc:  # any Redis failure or hang: fail open to memory
            if self._probe is None and self.redis is not None:
                self._probe = asyncio.create_task(
                    self._probe_until_answered(self.redis, type(exc).__name__),
                    name="portcullis-redis-probe",
                )
            return None

    async def _probe_until_answered(self, redis: RedisEngine, reason: str) -> None:
        """The one probe while Redis is suspect, off every request's path. A single
        late answer (a loaded host) clears at the first probe, silently; an outage is
        logged at ERROR once, and its end at WARNING. After an outage the pooled
        connections it dropped are opened again before requests return to Redis (as at
        start-up): a burst reconnecting them would wait past the deadline, and fail open."""
        down = False
        try:
            while True:
                try:
                    await asyncio.wait_for(redis.ping(), PROBE_TIMEOUT)
                    if down:
                        await asyncio.wait_for(
                            warm_up(redis.client, redis.prefix + "warm"), PROBE_TIMEOUT
                        )
                except Exception as exc:
                    if not down:
                        log.error(
                            "ratelimit.redis_unavailable",
                            extra={"reason": type(exc).__name__, "first": reason},
                        )
                    down = True
                    await asyncio.sleep(self.retry_seconds)
                else:
                    if down:
                        log.warning("ratelimit.redis_recovered")
                    return
        finally:
            self._probe = None

    async def close(self) -> None:
        """Stop a running probe (the app is stopping)."""
        probe = self._probe
        if probe is not None:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)

    async def check(self, checks: Sequence[Check], *, consume: bool = True) -> Decision:
        """Test every check; when all pass (and `consume`), count the request."""
        if not checks:
            return Decision(allowed=True)
        redis = self.redis
        if redis is not None:
            decision = await self._through_redis(lambda: redis.check(checks, consume=consume))
            if decision is not None:
                return decision
        return self.memory.check(self._fallback(checks), consume=consume)

    async def refund(self, checks: Sequence[Check]) -> None:
        """Give back one unit of each check, where it was spent (best effort)."""
        redis = self.redis
        if redis is not None and checks:
            if await self._through_redis(lambda: redis.refund(checks)) is not None:
                return
        self.memory.refund(self._fallback(checks))

    async def forget(self, checks: Sequence[Check]) -> None:
        """Reset these keys in this process and, when configured, in Redis (a Redis that
        is down keeps its keys until their window has passed)."""
        self.memory.forget(checks)
        self.memory.forget(self._fallback(checks))
        redis = self.redis
        if redis is not None and checks:
            if await self._through_redis(lambda: redis.forget(checks)) is None:
                # its keys expire with their window; meanwhile they still count there
                log.warning("ratelimit.reset_failed")
