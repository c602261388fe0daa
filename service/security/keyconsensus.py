"""Detect replicas that sign and verify with different key files.

Every process publishes the key ids it verifies with (`replica_keys`) from its upkeep
loop and compares them with what the other live processes published. A difference that
lasts across two checks (a rotation reaches every process within a few seconds, so a
one-off difference is expected) is logged once as `keys.mismatch` (WARNING) and shown by
`portcullis_key_set_mismatch` (1) until the sets agree again (`keys.consistent`).
"""

from __future__ import annotations

import os
import secrets
import socket

from ..logging import get_logger
from ..metrics import Metrics
from ..store import replicas
from ..store.db import Database, now_us
from .keys import KeyManager

log = get_logger("portcullis.keys")
LIVE_US = 60 * 1_000_000  # a process that has not published for a minute is gone


class KeyConsensus:
    def __init__(self, db: Database, keys: KeyManager, metrics: Metrics) -> None:
        self.db = db
        self.keys = keys
        self.metrics = metrics
        # host and pid say where to look; the suffix keeps two apps in one process apart
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.mismatched = False
        self._suspect = False

    async def check(self) -> bool:
        """Publish ours, compare with the others; True while a mismatch stands."""
        mismatched = await self._compare()
        self.metrics.key_set_mismatch.set(1 if mismatched else 0)
        return mismatched

    async def _compare(self) -> bool:
        mine = self.keys.ring.kids
        async with self.db.begin() as conn:
            await replicas.publish(conn, replica=self.replica, kids=mine)
            await replicas.purge(conn, seen_before_us=now_us() - 24 * 3600 * 1_000_000)
        async with self.db.read() as conn:
            others = await replicas.recent(conn, seen_after_us=now_us() - LIVE_US)
        differing = sorted(o.replica for o in others if o.kids != mine)
        if not differing:
            if self.mismatched:
                log.info("keys.consistent", kids=sorted(mine))
            self.mismatched = self._suspect = False
            return False
        if self._suspect and not self.mismatched:
            self.mismatched = True
            log.warning(
                "keys.mismatch",
                detail=(
                    "other processes verify with other signing keys: give every replica the "
                    "same PORTCULLIS_SIGNING_KEYS_FILE, or tokens fail across replicas"
                ),
                kids=sorted(mine),
                replicas=differing[:10],
            )
        self._suspect = True
        return self.mismatched
