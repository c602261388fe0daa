"""Failed-password budgets of the password grant: the `login` rate-limit policy.

`PORTCULLIS_RATE_LIMIT_LOGIN` holds two limits, `PAIR;CEILING` (default
`5/minute;100/hour`), both counting failed passwords only:

- PAIR, per (account, client network): when spent, that address answers 429 (policy
  `login`) for that account, right password or not. Other addresses are untouched, so ten
  wrong passwords from anywhere no longer lock the owner out.
- CEILING, per account, from every address: above it, an address that failed for this
  account within the ceiling's window answers 429 too, while an address with no recent
  failure for it still has its password checked. The owner's correct password from a
  fresh address is never refused because of other addresses' failures; a distributed
  guesser over the ceiling gets what the ceiling regains plus one guess per new address.

The client network is the client key of limits and blocks: the IPv4 address, or the
IPv6 `PORTCULLIS_IPV6_PREFIX` network (one host usually owns a whole /64). State lives
in the limiter, so with Redis every process and replica shares it.
A login with budget left costs one limiter round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from ..config import Limit, parse_limits
from ..security.proxies import client_key
from ..security.ratelimit import Check, Decision, Limiter

POLICY = "login"


@dataclass(frozen=True)
class LoginGate:
    """The limiter checks of one (account, client address)."""

    pair: Check
    account: Check
    seen: Check  # "this address failed for this account within the ceiling window"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int
    # the `login` entry of the RateLimit fields: (name, quota, window, remaining, reset)
    state: tuple[str, int, int, int, int]

    def as_decision(self) -> Decision:
        return Decision(allowed=self.allowed, retry_after=self.retry_after, states=[self.state])


@lru_cache(maxsize=4)
def login_limits(setting: str) -> tuple[Limit, Limit]:
    """`PAIR;CEILING` parsed once (the setting is validated to hold exactly two)."""
    pair, ceiling = parse_limits(setting)
    return pair, ceiling


def login_gate(setting: str, *, username: str, ip: str, ipv6_prefix: int) -> LoginGate:
    pair, ceiling = login_limits(setting)
    account = hashlib.sha256(username.lower().encode()).hexdigest()
    net = client_key(ip, ipv6_prefix)
    return LoginGate(
        pair=Check(
            key=f"login:pair:{account}:{net}", count=pair.count, window=pair.window, name=POLICY
        ),
        account=Check(
            key=f"login:acct:{account}",
            count=ceiling.count,
            window=ceiling.window,
            name=f"{POLICY}-account",
        ),
        seen=Check(
            key=f"login:seen:{account}:{net}", count=1, window=ceiling.window, name="login-seen"
        ),
    )


async def admit(limiter: Limiter, gate: LoginGate) -> Verdict:
    """May this address try a password for this account now? Consumes nothing."""
    both = await limiter.check([gate.pair, gate.account], consume=False)
    if both.allowed:
        return Verdict(True, 0, both.states[0])
    pair, account, seen = await asyncio.gather(
        *(limiter.check([check], consume=False) for check in (gate.pair, gate.account, gate.seen))
    )
    if not pair.allowed:
        return Verdict(False, pair.retry_after, pair.states[0])
    if not account.allowed and not seen.allowed:
        # Over the ceiling and this address failed recently: wait until the ceiling
        # regains room or this address's failure has aged out, whichever comes first.
        retry = min(account.retry_after, seen.retry_after)
        return Verdict(False, retry, (POLICY, gate.pair.count, gate.pair.window, 0, retry))
    return Verdict(True, 0, pair.states[0])


async def count_failure(limiter: Limiter, gate: LoginGate) -> Verdict:
    """Count a failed password against every budget that still has room."""
    both, _seen = await asyncio.gather(
        limiter.check([gate.pair, gate.account]), limiter.check([gate.seen])
    )
    if not both.allowed:  # the ceiling is spent: the pair budget still counts
        both = await limiter.check([gate.pair])
    return Verdict(True, 0, both.states[0])
