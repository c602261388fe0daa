"""The DPoP replay cache (RFC 9449 §11.1): a proof's `jti` counts once on every worker
and replica while the proof could still be accepted.

With Redis: one atomic `SET key 1 NX EX ttl`. Without Redis: one INSERT into the shared
database, whose primary key decides; expired rows are swept at most every PURGE_SECONDS.
While Redis fails, the database decides (degraded: a proof first seen in Redis just
before the outage is not known there), and `dpop.replay_fallback` is logged at most once
per PURGE_SECONDS. Neither keeps anything in this process's memory, so a flood of
proofs cannot grow it; both forget an entry once its proof is too old to be accepted.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from ..logging import get_logger
from ..store import dpop_proofs
from ..store.db import Database

PREFIX = "portcullis:dpop:"
PURGE_SECONDS = 30.0
log = get_logger("portcullis.dpop")


class ReplayCache:
    def __init__(self, db: Database, redis: Any | None) -> None:
        self.db = db
        self.redis = redis
        self._next_purge = 0.0
        self._next_complaint = 0.0

    async def first_use(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is seen within `ttl_seconds`, on any process."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        if self.redis is not None:
            try:
                return bool(await self.redis.set(PREFIX + digest, b"1", nx=True, ex=ttl_seconds))
            except Exception as exc:  # any Redis failure: the database decides
                if time.monotonic() >= self._next_complaint:
                    self._next_complaint = time.monotonic() + PURGE_SECONDS
                    log.error("dpop.replay_fallback", reason=type(exc).__name__)
        first = await dpop_proofs.record_first_use(
            self.db, key_hash=digest, ttl_seconds=ttl_seconds
        )
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_SECONDS
            await dpop_proofs.purge_expired(self.db)
        return first
