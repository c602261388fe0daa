"""How long and how big `make bench` measures: the full run and the quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool
    rounds: int  # interleaved rounds of every path (medians are taken over them)
    seconds: int  # one path in one round
    warmup: int  # each path once, before the first round
    scale_seconds: int  # one step of a scaling check
    note_counts: tuple[int, ...]  # notes per user
    client_counts: tuple[int, ...]  # distinct clients seen by the limiter (cumulative)
    burst_rounds: int  # of the simultaneous keep-alive requests
    connections: int = 64
    connection_levels: tuple[int, ...] = (64, 256, 1024)
    burst_connections: int = 1000
    # The login side load: this many connections, each sending a password grant, waiting
    # for the answer, then pausing `login_pause_ms`: at most 2 Argon2id hashes at once, a
    # few logins a second (the rate reached is printed; bench/PROFILE.md has the figures).
    login_connections: int = 2
    login_pause_ms: int = 100


FULL = Plan(
    quick=False,
    rounds=3,
    seconds=6,
    warmup=3,
    scale_seconds=4,
    note_counts=(10, 1_000, 100_000),
    client_counts=(1, 1_000, 10_000, 100_000),
    burst_rounds=5,
)

QUICK = Plan(
    quick=True,
    rounds=2,
    seconds=3,
    warmup=1,
    scale_seconds=2,
    note_counts=(10, 1_000, 10_000),
    client_counts=(1, 1_000, 10_000),
    burst_rounds=1,
)
