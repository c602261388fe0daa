"""The abuse policy: count a client's failures and block its address past the threshold.

`is_blocked` is the per-request check (a dict look-up); `record_failure` counts one
failure and, when that crosses `PORTCULLIS_BLOCK_AFTER`, writes the block (one winner
across processes), its signal and audit row, then counts and logs it once; `lift` is an
admin's unblock.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import IntegrityError

from ..logging import get_logger, security_event
from ..metrics import Metrics
from ..security.blocking import BlockList, FailureCounter
from ..signalbus import SignalBus
from ..store import audit
from ..store import signals as signal_store
from ..store.db import Database, now

log = get_logger("portcullis.services")


class AbusePolicy:
    def __init__(
        self,
        *,
        db: Database,
        bus: SignalBus,
        blocks: BlockList,
        failures: FailureCounter,
        metrics: Metrics,
        block_seconds: int,
    ) -> None:
        self.db = db
        self.bus = bus
        self.blocks = blocks
        self.failures = failures
        self.metrics = metrics
        self.block_seconds = block_seconds

    def is_blocked(self, ip: str) -> bool:
        """Whether the address `ip` is refused: its key is blocked and it is not exempt."""
        return self.blocks.is_blocked(self.failures.key(ip)) and not self.failures.is_exempt(ip)

    async def record_failure(self, ip: str, reason: str) -> None:
        """Count a failure for `ip`; block its key when that crosses the threshold. A
        request still running when the block landed adds nothing: the block consumed its
        count."""
        if self.is_blocked(ip) or not await self.failures.failed(ip):
            return
        key = self.failures.key(ip)
        try:
            async with self.db.begin() as conn:
                block = await signal_store.start_block(
                    conn, ip=key, reason=reason, base_seconds=self.block_seconds
                )
                if block is None:
                    return  # already blocked (by this or another process)
                until = block.until_us / 1_000_000
                await self.bus.record(conn, kind="block", value=key, until=until, data=reason)
                await audit.record(conn, event="client.blocked", actor=None, target=key, ip=ip)
        except IntegrityError:
            return  # another process inserted the same block first: it reports it
        except Exception as exc:
            log.error("client.block_failed", reason=type(exc).__name__)
            return
        await self.bus.announce()
        self.metrics.client_blocks.inc()
        security_event(
            "client.blocked",
            level=logging.ERROR,
            reason=reason,
            client_ip=ip,
            block=key,
            seconds=block.seconds,
            until=json.dumps(until),
        )

    async def lift(self, key: str, *, actor: str, ip: str | None) -> bool:
        """Lift the block of a client key (an address or IPv6 prefix) now, everywhere;
        False when it is not blocked."""
        async with self.db.begin() as conn:
            if not await signal_store.lift_block(conn, ip=key):
                return False
            await self.bus.record(conn, kind="unblock", value=key, until=now() + 86400)
            await audit.record(conn, event="client.unblocked", actor=actor, target=key, ip=ip)
        await self.bus.announce()
        return True
