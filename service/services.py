"""Wires the per-app parts together and starts and stops them; does nothing else.

One `Services` per app (no module globals): settings, database, keys, tokens, password
hasher, limiter, denylist, blocks, the record cache, metrics, Redis, and the jobs built
on them: the signal bus (signalbus.py), readiness and upkeep (health.py) and the abuse
policy (domain/abuse.py). Every cache of the request path is created and held here (or
by a part held here), on the one cache type of `cache.py`.

Constructing a `Services` touches nothing outside memory. `open` does the file and
database work (the data directory, the key file, the common-password list, the SQLite
file); `start` (in `before_serving`) opens and starts the jobs, `stop` (in
`after_serving`) ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .config import Settings
from .datadir import log_tightened, secure_data_dir
from .domain import disabled
from .domain.abuse import AbusePolicy
from .domain.records import RecordCache
from .health import Health
from .metrics import Metrics
from .redisclient import close as close_redis
from .redisclient import make_client, warm_up
from .security.blocking import BlockList, FailureCounter
from .security.denylist import Denylist
from .security.dpop_gate import build_gate
from .security.dpop_replay import ReplayCache
from .security.issuer_keys import ExternalIssuers
from .security.keyconsensus import KeyConsensus
from .security.keys import KeyManager
from .security.passwords import PasswordService
from .security.proxies import ClientKeys
from .security.ratelimit import Limiter, RedisEngine
from .security.tokens import TokenService
from .signalbus import SignalBus
from .store.db import Database
from .workers import register_worker, unregister_worker

EXTENSION = "portcullis"


class Services:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.db = Database.for_settings(settings)
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
        self.redis: Any = make_client(settings.redis_dsn) if settings.redis_dsn else None
        self.key_consensus = KeyConsensus(self.db, self.keys, self.metrics)
        self.external = (
            ExternalIssuers(settings.issuers, self.metrics)
            if settings.trusted_issuers is not None
            else None
        )
        self.replays = ReplayCache(self.db, self.redis)
        self.dpop = build_gate(
            issuer=settings.issuer,
            replay=self.replays,
            keys=self.keys,
            metrics=self.metrics,
            nonce=settings.dpop_nonce,
            required=settings.dpop_required,
        )
        self.limiter = Limiter(RedisEngine(self.redis) if self.redis is not None else None)
        self.denylist = Denylist()
        self.blocks = BlockList()
        self.client_keys = ClientKeys(settings.ipv6_prefix)
        self.failures = FailureCounter(
            self.limiter, settings.limits("block"), settings.block_exempt, self.client_keys
        )
        self.records = RecordCache()
        self.bus = SignalBus(
            self.db, self.denylist, self.blocks, self.failures, self.redis, self.records
        )
        self.abuse = AbusePolicy(
            db=self.db,
            bus=self.bus,
            blocks=self.blocks,
            failures=self.failures,
            metrics=self.metrics,
            block_seconds=settings.block_seconds,
        )
        self.health = Health(
            db=self.db,
            redis=self.redis,
            metrics=self.metrics,
            keys=self.keys,
            key_consensus=self.key_consensus,
            denylist=self.denylist,
            blocks=self.blocks,
            migrate_on_start=settings.migrate_on_start,
            limiter=self.limiter,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """The file work, off the event loop: the data directory (created 0700, an older
        install's files tightened, which is logged), the key file (created once, then
        loaded), the password policy's list of common passwords, and the database (a
        SQLite file created private, in WAL mode)."""
        log_tightened(await asyncio.to_thread(secure_data_dir, self.settings))
        await asyncio.to_thread(self.keys.open)
        await asyncio.to_thread(self.passwords.open)
        await self.db.open()

    async def start(self) -> None:
        await self.open()
        self.health.worker_dir = register_worker(self.settings.data_dir)
        await self.health.start()
        with contextlib.suppress(Exception):
            await self.bus.poll()
        with contextlib.suppress(Exception):  # down: the watcher reads it next time
            await disabled.refresh(self.db, self.denylist)
        if self.redis is not None:
            with contextlib.suppress(Exception):  # down: the limiter copes, and retries
                await warm_up(self.redis, RedisEngine.PREFIX + "warm")
        if self.external is not None:
            self.external.start()
        self._tasks = [
            asyncio.create_task(
                self.bus.run(self.health.ensure_migrated), name="portcullis-signals"
            ),
            asyncio.create_task(self.health.run(), name="portcullis-upkeep"),
            asyncio.create_task(disabled.watch(self.db, self.denylist), name="portcullis-disabled"),
        ]
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self.bus.listen(), name="portcullis-sub"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a client library must not hold the shutdown up
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks = []
        await self.replays.close()  # the last batch of proofs, before the database goes
        await self.limiter.close()
        if self.external is not None:
            await self.external.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close_redis(self.redis), timeout=2.0)
        await self.db.close()
        self.passwords.close()
        self.metrics.process_exit()
        if self.health.worker_dir is not None:
            unregister_worker(self.health.worker_dir)
