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

Budgets are spent when an attempt is admitted, in one atomic limiter step, and given
back when the password was right: N concurrent guesses never check more passwords than
the budgets allow, on any number of processes and replicas. A failure counts nothing
more; it was counted at admission. An admitted login costs two limiter round trips,
a successful one two more.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from ..config import Limit
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


def login_gate(
    limits: tuple[Limit, Limit], *, username: str, ip: str, ipv6_prefix: int
) -> LoginGate:
    """The checks of one attempt; `limits` is `Settings.login_limits` (PAIR, CEILING)."""
    pair, ceiling = limits
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


@dataclass(frozen=True)
class Admission:
    """An admitted attempt and the budget units it spent (given back on success)."""

    verdict: Verdict
    spent: tuple[Check, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    @property
    def retry_after(self) -> int:
        return self.verdict.retry_after


async def admit(limiter: Limiter, gate: LoginGate) -> Admission:
    """May this address try a password for this account now? Spends the budgets at
    once, atomically (one limiter step each), so concurrent attempts cannot all pass a
    check that nothing has been counted against yet."""
    both = await limiter.check([gate.pair, gate.account])
    if both.allowed:
        # Note that this address tried: should the ceiling be spent before this attempt
        # is settled, the address already counts as one that failed.
        await limiter.check([gate.seen])
        return Admission(Verdict(True, 0, both.states[0]), (gate.pair, gate.account))
    if gate.pair.name in both.refused:
        return Admission(Verdict(False, both.retry_after, both.states[0]))
    # Over the ceiling: an address with no recent failure for this account gets one
    # attempt (spending its pair budget and its one "seen" unit together); one that failed
    # recently waits until the ceiling regains room or its failure has aged out.
    fresh = await limiter.check([gate.pair, gate.seen])
    if fresh.allowed:
        return Admission(Verdict(True, 0, fresh.states[0]), (gate.pair, gate.seen))
    if gate.pair.name in fresh.refused:
        return Admission(Verdict(False, fresh.retry_after, fresh.states[0]))
    retry = min(both.retry_after, fresh.retry_after)
    return Admission(Verdict(False, retry, (POLICY, gate.pair.count, gate.pair.window, 0, retry)))


async def succeeded(limiter: Limiter, gate: LoginGate, admission: Admission) -> None:
    """The right password: give back what the attempt spent, and forget that this
    address tried, so the owner is never refused for having logged in."""
    if admission.spent:
        spent = [c for c in admission.spent if c is not gate.seen]
        await asyncio.gather(limiter.refund(spent), limiter.forget([gate.seen]))
