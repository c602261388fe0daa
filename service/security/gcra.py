"""GCRA engines: one atomic test-and-spend of several limits, in memory or in Redis.

A check of all the limits that apply to a request is one atomic step: every limit is
tested and, only when all pass, every theoretical arrival time (TAT) is advanced. In
memory that is a synchronous function (no await between test and update, so the event
loop cannot interleave); in Redis it is one Lua script, one round trip, with keys
expiring when their window has passed and time taken from the Redis server so replicas
with skewed clocks share one budget. `refund` gives one spent unit back, atomically too
(the login budgets are spent when an attempt is admitted and given back on success).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

US = 1_000_000


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
    refused: frozenset[str] = frozenset()  # the names of every check that refused


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
            decision.refused |= {check.name}
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
    """Per-process GCRA with a bounded LRU of keys (old keys are evicted first).

    The limiter's state, not a cache (held by the `Limiter` that `Services` holds): a
    dropped entry cannot be recomputed and gives its key a fresh budget, so expired
    entries go first and live ones only beyond `max_keys`, least recently used first
    (docs/architecture.md, "One cache type")."""

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

    def refund(self, checks: Sequence[Check], now: int | None = None) -> None:
        """Give one spent unit of each check back (never below an unused budget)."""
        now = now if now is not None else time.time_ns() // 1000
        for check in checks:
            tat = self._tats.get(check.key)
            if tat is not None and tat > now:
                self._tats[check.key] = max(now, tat - check.emission_us)

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


_REFUND_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat and tat > now then
    local new_tat = math.max(now, tat - tonumber(ARGV[i]))
    local ttl = math.ceil((new_tat - now) / 1000) + 1
    redis.call('SET', KEYS[i], new_tat, 'PX', ttl)
  end
end
return 1
"""


class RedisEngine:
    """GCRA in Redis: one EVALSHA per check, atomic across processes and replicas."""

    # One hash tag for every limiter key: a check's keys (principal, address, account…)
    # must sit in one slot for the script to run on a Redis Cluster, and a key must land
    # in the same slot whichever check it joins, so all of them share one slot.
    PREFIX = "portcullis:{rl}:"

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_LUA)
        self._refund = client.register_script(_REFUND_LUA)

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

    async def ping(self) -> None:
        await self.client.ping()

    async def refund(self, checks: Sequence[Check]) -> bool:
        await self._refund(
            keys=[self.prefix + c.key for c in checks], args=[c.emission_us for c in checks]
        )
        return True

    async def forget(self, checks: Sequence[Check]) -> bool:
        await self.client.delete(*[self.prefix + c.key for c in checks])
        return True
