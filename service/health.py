"""Readiness and background upkeep: schema check, dependency checks, key reloads, purges.

One `Health` per app. `start` migrates and runs the first readiness check before the
process serves, so `dependency_up` tells the truth from the first scrape. `check_ready`
keeps `dependency_up` and the logs current; `/readyz` asks `ready`, which answers from
a check under `READY_CACHE_SECONDS` old and otherwise shares one check among every
caller meanwhile (a probe flood costs one database and Redis round trip per second).
`run` is the upkeep loop (every `READY_SECONDS`, never on a request's
path): key consensus, the per-process limits warning, readiness, reloading the signing
key file when it changes, and purging expired state. `ensure_migrated` retries the
start-up migration while the database is down (the signal bus calls it before each poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .logging import get_logger
from .metrics import Metrics
from .security.blocking import BlockList
from .security.denylist import Denylist
from .security.keyconsensus import KeyConsensus
from .security.keys import KeyManager
from .security.ratelimit import Limiter
from .store import dpop_proofs, idempotency, migrations
from .store import signals as signal_store
from .store.db import Database
from .workers import live_workers

log = get_logger("portcullis.services")
READY_SECONDS = 2.5
KEY_CONSENSUS_SECONDS = 10.0
PURGE_SECONDS = 60.0
READY_CACHE_SECONDS = 1.0
# The start-up migration retried while the database is unreachable: first after this,
# doubling up to the cap, so a long outage logs a line a minute, not one every poll.
MIGRATE_RETRY_SECONDS = (0.5, 60.0)


@dataclass
class Readiness:
    database: str = "unknown"
    redis: str = "disabled"
    checked: float = 0.0


class Health:
    def __init__(
        self,
        *,
        db: Database,
        redis: Any,
        metrics: Metrics,
        keys: KeyManager,
        key_consensus: KeyConsensus,
        denylist: Denylist,
        blocks: BlockList,
        migrate_on_start: bool,
        limiter: Limiter | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.metrics = metrics
        self.keys = keys
        self.key_consensus = key_consensus
        self.denylist = denylist
        self.blocks = blocks
        self.migrate_on_start = migrate_on_start
        self.limiter = limiter
        self._answered: tuple[float, Readiness] | None = None  # (monotonic, last /readyz check)
        self._checking: asyncio.Future[Readiness] | None = None
        self.readiness = Readiness(redis="unknown" if redis is not None else "disabled")
        self.migrated = False
        self._retry_at, self._retry_in = 0.0, MIGRATE_RETRY_SECONDS[0]
        self.draining = False  # set on SIGTERM: readiness fails, requests are still served
        self.worker_dir: Path | None = None

    def begin_drain(self) -> None:
        """SIGTERM: readiness answers 503 from now on; requests are still served."""
        self.draining = True

    # Schema ---------------------------------------------------------------------

    async def try_migrate(self) -> None:
        """Migrate (or, with PORTCULLIS_MIGRATE_ON_START off, check that a migration job
        has); until then readiness reports the database as not ready."""
        try:
            if self.migrate_on_start:
                await migrations.migrate(self.db)
            elif await migrations.current_version(self.db) < (
                latest := migrations.latest_version()
            ):
                log.error("database.schema_behind", expected=latest)
                return
        except Exception as exc:
            log.error(
                "database.migrate_failed",
                setting="PORTCULLIS_DATABASE_URL",
                database=self.db.engine.url.render_as_string(hide_password=True),
                reason=type(exc).__name__,
                retry_seconds=self._retry_in,
            )
            self._retry_at = time.monotonic() + self._retry_in
            self._retry_in = min(self._retry_in * 2, MIGRATE_RETRY_SECONDS[1])
        else:
            self.migrated = True

    async def start(self) -> None:
        """Before serving: migrate, then check readiness once (sets `dependency_up`)."""
        await self.try_migrate()
        with contextlib.suppress(Exception):
            await self.check_ready()

    async def ensure_migrated(self) -> None:
        if not self.migrated and time.monotonic() >= self._retry_at:
            await self.try_migrate()

    # Readiness ------------------------------------------------------------------

    async def ready(self) -> Readiness:
        """/readyz: the last answer when under READY_CACHE_SECONDS old (and the limiter
        has not found Redis failing since), else the result of the one check in flight
        (started now if none is)."""
        answered = self._answered
        if (
            answered is not None
            and time.monotonic() - answered[0] < READY_CACHE_SECONDS
            and not (self.limiter is not None and self.limiter.redis_suspect)
        ):
            return answered[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check_and_remember())
        # shielded: a caller that goes away does not cancel the check the others await
        return await asyncio.shield(self._checking)

    async def _check_and_remember(self) -> Readiness:
        state = await self.check_ready()
        self._answered = (time.monotonic(), state)
        return state

    async def check_ready(self) -> Readiness:
        async def database() -> str:
            try:
                await asyncio.wait_for(self.db.ping(), timeout=2.0)
            except Exception:
                return "unavailable"
            if not self.migrated:  # reachable again: migrate at the next poll, not the
                self._retry_at = 0.0  # end of the back-off
            return "ok" if self.migrated else "schema_behind"

        async def redis() -> str:
            if self.redis is None:
                return "disabled"
            try:
                await asyncio.wait_for(self.redis.ping(), timeout=1.0)
            except Exception:
                return "unavailable"
            return "ok"

        db_state, redis_state = await asyncio.gather(database(), redis())
        previous = self.readiness
        for name, before, after in (
            ("database", previous.database, db_state),
            ("redis", previous.redis, redis_state),
        ):
            if after == "unavailable" and before != "unavailable":
                log.error("dependency.down", dependency=name, reason="check_failed")
            elif after == "ok" and before == "unavailable":
                log.warning("dependency.recovered", dependency=name)
        self.readiness = Readiness(database=db_state, redis=redis_state, checked=time.time())
        self.metrics.dependency_up.labels("database").set(1 if db_state == "ok" else 0)
        if self.redis is not None:
            self.metrics.dependency_up.labels("redis").set(1 if redis_state == "ok" else 0)
        return self.readiness

    # Upkeep ---------------------------------------------------------------------

    def warn_if_limits_per_process(self) -> int:
        """Without Redis, limits and failure counts live in each worker process."""
        workers = live_workers(self.worker_dir) if self.worker_dir is not None else 1
        if workers > 1 and self.redis is None:
            log.warning(
                "ratelimit.per_process",
                workers=workers,
                detail=(
                    f"{workers} worker processes and no PORTCULLIS_REDIS_URL: rate limits and "
                    "failure counts are enforced per process, so a client may get up to "
                    f"{workers} times each limit. Set PORTCULLIS_REDIS_URL for exact limits."
                ),
            )
        return workers

    async def run(self) -> None:
        last_purge = last_consensus = started = time.monotonic()
        warned = False
        while True:
            await asyncio.sleep(READY_SECONDS)
            if time.monotonic() - last_consensus >= KEY_CONSENSUS_SECONDS:
                last_consensus = time.monotonic()
                with contextlib.suppress(Exception):  # database down: check next time
                    await self.key_consensus.check()
            if not warned and time.monotonic() - started > 3:  # sibling workers are up
                warned = True
                workers = self.warn_if_limits_per_process()
                if self.limiter is not None:  # its share of each limit while Redis is down
                    self.limiter.share = workers
            with contextlib.suppress(Exception):
                await self.check_ready()  # keeps dependency_up and the logs current
            try:
                if self.keys.maybe_reload():
                    log.info("keys.reloaded", kid=self.keys.ring.current_kid)
            except Exception as exc:
                log.error("keys.reload_failed", reason=type(exc).__name__)
            if time.monotonic() - last_purge > PURGE_SECONDS:
                last_purge = time.monotonic()
                self.denylist.purge()
                self.blocks.purge()
                with contextlib.suppress(Exception):
                    async with self.db.begin() as conn:
                        await signal_store.purge_expired(conn)
                        await idempotency.purge_expired(conn)
                        await dpop_proofs.purge_expired(conn)
