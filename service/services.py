"""The per-app service container and its background upkeep.

One `Services` per app (no module globals): settings, database, keys, tokens, password
hasher, limiter, denylist, blocks, metrics, Redis. `start` runs in `before_serving`,
`stop` in `after_serving`. Background upkeep, never on a request's path:
- replay the signals table (revocations, blocks) through the signal bus every 0.5 s,
  and at once when Redis announces one (pub/sub), so every process and replica
  enforces them, late-committing rows included (see signalbus.py);
- reload the signing key file when it changes (checked every `READY_SECONDS`);
- retry the start-up migration while the database is down; purge expired state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quart import current_app
from sqlalchemy.exc import IntegrityError

from .config import Settings
from .logging import get_logger, security_event
from .metrics import Metrics
from .redisclient import close as close_redis
from .redisclient import make_client, warm_up
from .security.blocking import BlockList, FailureCounter
from .security.denylist import Denylist
from .security.issuers import ExternalIssuers, load_issuers
from .security.keyconsensus import KeyConsensus
from .security.keys import KeyManager
from .security.passwords import PasswordService
from .security.ratelimit import Limiter, RedisEngine
from .security.tokens import TokenService
from .signalbus import SignalBus
from .store import audit, idempotency, migrations
from .store import signals as signal_store
from .store.db import Database, now_us
from .workers import live_workers, register_worker, unregister_worker

log = get_logger("portcullis.services")
EXTENSION = "portcullis"
SIGNAL_CHANNEL = "portcullis:signals"
POLL_SECONDS = 0.5
READY_SECONDS = 2.5
KEY_CONSENSUS_SECONDS = 10.0


@dataclass
class Readiness:
    database: str = "unknown"
    redis: str = "disabled"
    checked: float = 0.0


class Services:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.db = Database(settings.database_dsn, pool_size=settings.database_pool_size)
        self.keys = KeyManager(settings.keys_file)
        self.tokens = TokenService(
            self.keys,
            issuer=settings.issuer,
            audience=settings.audience,
            access_ttl=settings.access_token_ttl,
        )
        self.passwords = PasswordService(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        self.redis: Any = None
        if settings.redis_dsn:
            self.redis = make_client(settings.redis_dsn)
        self.key_consensus = KeyConsensus(self.db, self.keys, self.metrics)
        self.external = (
            ExternalIssuers(load_issuers(settings.trusted_issuers), self.metrics)
            if settings.trusted_issuers is not None
            else None
        )
        self.limiter = Limiter(RedisEngine(self.redis) if self.redis is not None else None)
        self.denylist = Denylist()
        self.blocks = BlockList()
        self.failures = FailureCounter(
            self.limiter, settings.limits("block"), settings.block_exempt, settings.ipv6_prefix
        )
        self.readiness = Readiness(redis="unknown" if self.redis is not None else "disabled")
        self.bus = SignalBus(
            self.db, self.denylist, self.blocks, on_block_change=self.failures.reset_here
        )
        self._migrated = False
        self._tasks: list[asyncio.Task[None]] = []
        self._worker_dir: Path | None = None
        self._wake = asyncio.Event()
        self.poll_seconds = POLL_SECONDS
        self.draining = False  # set on SIGTERM: readiness fails, requests are still served

    # Life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._worker_dir = register_worker(self.settings.data_dir)
        await self._try_migrate()
        with contextlib.suppress(Exception):
            await self.poll_signals()
        if self.redis is not None:
            with contextlib.suppress(Exception):  # down: the limiter copes, and retries
                await warm_up(self.redis)
        if self.external is not None:
            self.external.start()
        self._tasks = [
            asyncio.create_task(self._signal_loop(), name="portcullis-signals"),
            asyncio.create_task(self._upkeep_loop(), name="portcullis-upkeep"),
        ]
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self._subscribe_loop(), name="portcullis-sub"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a client library must not hold the shutdown up
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks = []
        if self.external is not None:
            await self.external.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close_redis(self.redis), timeout=2.0)
        await self.db.close()
        self.passwords.close()
        self.metrics.process_exit()
        if self._worker_dir is not None:
            unregister_worker(self._worker_dir)

    def begin_drain(self) -> None:
        """SIGTERM: readiness answers 503 from now on; requests are still served."""
        self.draining = True

    async def _try_migrate(self) -> None:
        """Migrate (or, with PORTCULLIS_MIGRATE_ON_START off, check that a migration job
        has); until then readiness reports the database as not ready."""
        try:
            if self.settings.migrate_on_start:
                await migrations.migrate(self.db)
            elif await migrations.current_version(self.db) < migrations.latest_version():
                log.error("database.schema_behind", expected=migrations.latest_version())
                return
        except Exception as exc:
            log.error("database.migrate_failed", reason=type(exc).__name__)
        else:
            self._migrated = True

    # Signals --------------------------------------------------------------------

    async def signal(
        self, conn: Any, *, kind: str, value: str, until: float, data: str = ""
    ) -> None:
        """Record a signal in the caller's transaction and apply it here at once (should
        the transaction fail, this process errs on the safe side until the entry expires).
        Blocks and unblocks reset the address's failure count (see security/blocking)."""
        signal_id = await signal_store.add_signal(
            conn, kind=kind, value=value, expires_us=int(until * 1_000_000), data=data or None
        )
        self.bus.apply(kind, value, until, data or None, signal_id)
        if kind in ("block", "unblock"):
            await self.failures.reset(value)

    async def announce(self) -> None:
        """After commit: wake the other processes now rather than at their next poll."""
        if self.redis is None:
            return
        with contextlib.suppress(Exception):
            await self.redis.publish(SIGNAL_CHANNEL, b"1")

    async def poll_signals(self) -> None:
        """Read the signals committed since the last poll, late commits included."""
        await self.bus.poll()

    async def _signal_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                if not self._migrated:
                    await self._try_migrate()
                await self.poll_signals()
            except Exception as exc:  # database down: keep serving, retry next tick
                log.debug("signals.poll_failed", reason=type(exc).__name__)

    async def _subscribe_loop(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(SIGNAL_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    def warn_if_limits_per_process(self) -> int:
        """Without Redis, limits and failure counts live in each worker process."""
        workers = live_workers(self._worker_dir) if self._worker_dir is not None else 1
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

    async def _upkeep_loop(self) -> None:
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
                self.warn_if_limits_per_process()
            with contextlib.suppress(Exception):
                await self.check_ready()  # keeps dependency_up and the logs current
            try:
                if self.keys.maybe_reload():
                    log.info("keys.reloaded", kid=self.keys.ring.current_kid)
            except Exception as exc:
                log.error("keys.reload_failed", reason=type(exc).__name__)
            if time.monotonic() - last_purge > 60:
                last_purge = time.monotonic()
                self.denylist.purge()
                self.blocks.purge()
                with contextlib.suppress(Exception):
                    async with self.db.begin() as conn:
                        await signal_store.purge_expired(conn)
                        await idempotency.purge_expired(conn)

    # Readiness ------------------------------------------------------------------

    async def check_ready(self) -> Readiness:
        async def database() -> str:
            try:
                await asyncio.wait_for(self.db.ping(), timeout=2.0)
            except Exception:
                return "unavailable"
            return "ok" if self._migrated else "schema_behind"

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

    # Abuse ----------------------------------------------------------------------

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
                    conn, ip=key, reason=reason, base_seconds=self.settings.block_seconds
                )
                if block is None:
                    return  # already blocked (by this or another process)
                until = block["until_us"] / 1_000_000
                await self.signal(conn, kind="block", value=key, until=until, data=reason)
                await audit.record(conn, event="client.blocked", actor=None, target=key, ip=ip)
        except IntegrityError:
            return  # another process inserted the same block first: it reports it
        except Exception as exc:
            log.error("client.block_failed", reason=type(exc).__name__)
            return
        await self.announce()
        self.metrics.client_blocks.inc()
        security_event(
            "client.blocked",
            level=logging.ERROR,
            reason=reason,
            client_ip=ip,
            block=key,
            seconds=block["seconds"],
            until=json.dumps(until),
        )


def services() -> Services:
    svc: Services = current_app.extensions[EXTENSION]
    return svc


def now() -> float:
    return now_us() / 1_000_000
