"""GCRA rate limiting that is exact under concurrency, in memory or in Redis.

Limits are declared with quart-rate-limiter's API (`rate_limit`, `limit_blueprint`,
`rate_exempt`, `RateLimit`); its enforcement is not used, because its stores are not
atomic (Redis GET then SET, keys without TTL) and its memory store never evicts.

Here a check of all the limits that apply to a request is one atomic step: every
limit is tested and, only when all pass, every theoretical arrival time (TAT) is
advanced. In memory that is a synchronous function (no await between test and
update, so the event loop cannot interleave); in Redis it is one Lua script, one round
trip, with keys expiring when their window has passed and time taken from the Redis
server so replicas with skewed clocks share one budget.

If Redis is unreachable the limiter fails open to the per-process memory engine,
logs that at ERROR once per outage, and retries Redis after a short back-off.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from quart_rate_limiter import RateLimit

from ..config import Limit

log = logging.getLogger("portcullis.ratelimit")
US = 1_000_000


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


@dataclass(frozen=True)
class Check:
    key: str
    count: int
    window: int  # seconds
    name: str
    emission_us: int = field(init=False)  # the GCRA emission interval

    def __post_init__(self) -> None:
        object.__setattr__(self, "emission_us", max(1, (self.window * US) // self.count))


@dataclass
class Decision:
    allowed: bool
    retry_after: int = 0
    # (name, count, window, remaining, reset seconds) for each check
    states: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    rejected_by: str | None = None


@lru_cache(maxsize=256)
def _policy_field(policies: tuple[tuple[str, int, int], ...]) -> bytes:
    """`RateLimit-Policy`, built once per set of limits (it depends on nothing else)."""
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


def _evaluate(
    checks: Sequence[Check], tats: Sequence[int | None], now: int
) -> tuple[Decision, list[int]]:
    decision = Decision(allowed=True)
    new_tats: list[int] = []
    worst_retry = 0
    for check, stored in zip(checks, tats, strict=True):
        window = check.window * US
        tat = stored if stored is not None and stored > now else now
        new_tat = tat + check.emission_us
        diff = new_tat - now
        if diff > window:
            retry = diff - window
            decision.allowed = False
            if retry > worst_retry:
                worst_retry = retry
                decision.rejected_by = check.name
            decision.states.append(
                (check.name, check.count, check.window, 0, math.ceil(retry / US))
            )
            new_tats.append(tat)
        else:
            remaining = (window - diff) // check.emission_us
            decision.states.append(
                (check.name, check.count, check.window, int(remaining), math.ceil(diff / US))
            )
            new_tats.append(new_tat)
    decision.retry_after = max(1, math.ceil(worst_retry / US)) if not decision.allowed else 0
    return decision, new_tats


class MemoryEngine:
    """Per-process GCRA with a bounded LRU of keys (old keys are evicted first)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tats)

    def check(
        self, checks: Sequence[Check], now: int | None = None, *, consume: bool = True
    ) -> Decision:
        now = now if now is not None else time.time_ns() // 1000
        stored = [self._tats.get(c.key) for c in checks]
        decision, new_tats = _evaluate(checks, stored, now)
        if decision.allowed and consume:
            for check, tat in zip(checks, new_tats, strict=True):
                self._tats[check.key] = tat
                self._tats.move_to_end(check.key)
            self._evict(now)
        return decision

    def forget(self, checks: Sequence[Check]) -> None:
        """Drop the state of these keys: they count from zero again."""
        for check in checks:
            self._tats.pop(check.key, None)

    def _evict(self, now: int) -> None:
        # Expired keys carry no state (TAT in the past == fresh key); drop them first.
        while self._tats:
            tat = next(iter(self._tats.values()))
            if tat > now and len(self._tats) <= self.max_keys:
                break
            self._tats.popitem(last=False)


_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local out = {1, 0}
local new_tats = {}
local worst = 0
for i = 1, n do
  local emission = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + emission
  local diff = new_tat - now
  if diff > window then
    out[1] = 0
    if diff - window > worst then worst = diff - window; out[2] = i end
    new_tats[i] = tat
  else
    new_tats[i] = new_tat
  end
  out[2 + i] = tat
end
if out[1] == 1 and ARGV[2 * n + 1] == '1' then
  for i = 1, n do
    local ttl = math.ceil((new_tats[i] - now) / 1000) + 1
    redis.call('SET', KEYS[i], new_tats[i], 'PX', ttl)
  end
end
out[3 + n] = now
return out
"""


class RedisEngine:
    """GCRA in Redis: one EVALSHA per check, atomic across processes and replicas."""

    # One hash tag for every limiter key: a check's keys (principal, address, account…)
    # must sit in one slot for the script to run on a Redis Cluster, and a key must land
    # in the same slot whichever check it joins, so all of them share one slot.
    def __init__(self, client: Any, prefix: str = "portcullis:{rl}:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_LUA)

    async def check(self, checks: Sequence[Check], *, consume: bool = True) -> Decision:
        keys = [self.prefix + c.key for c in checks]
        args: list[int] = []
        for c in checks:
            args += [c.emission_us, c.window * US]
        args.append(1 if consume else 0)
        raw = await self._script(keys=keys, args=args)
        now = int(raw[-1])
        stored = [int(v) for v in raw[2 : 2 + len(checks)]]
        decision, _ = _evaluate(checks, stored, now)
        return decision

    async def forget(self, checks: Sequence[Check]) -> None:
        await self.client.delete(*[self.prefix + c.key for c in checks])


class Limiter:
    """Chooses Redis when configured and reachable, else memory (fail open)."""

    def __init__(self, redis_engine: RedisEngine | None, *, retry_seconds: float = 1.0) -> None:
        self.memory = MemoryEngine()
        self.redis = redis_engine
        self.retry_seconds = retry_seconds
        self._redis_down_since: float | None = None

    async def check(self, checks: Sequence[Check], *, consume: bool = True) -> Decision:
        """Test every check; when all pass (and `consume`), count the request."""
        if not checks:
            return Decision(allowed=True)
        if self.redis is not None:
            down = self._redis_down_since
            if down is None or time.monotonic() - down >= self.retry_seconds:
                try:
                    decision = await self.redis.check(checks, consume=consume)
                except Exception as exc:  # any Redis failure: fail open to memory
                    if self._redis_down_since is None:
                        log.error(
                            "ratelimit.redis_unavailable",
                            extra={"reason": type(exc).__name__, "fallback": "memory"},
                        )
                    self._redis_down_since = time.monotonic()
                else:
                    if self._redis_down_since is not None:
                        log.warning("ratelimit.redis_recovered")
                        self._redis_down_since = None
                    return decision
        return self.memory.check(checks, consume=consume)

    async def forget(self, checks: Sequence[Check]) -> None:
        """Reset these keys in this process and, when configured, in Redis."""
        self.memory.forget(checks)
        down = self._redis_down_since
        if self.redis is None or not checks:
            return
        if down is None or time.monotonic() - down >= self.retry_seconds:
            try:
                await self.redis.forget(checks)
            except Exception as exc:  # Redis down: its keys expire with their window
                log.warning("ratelimit.reset_failed", extra={"reason": type(exc).__name__})
