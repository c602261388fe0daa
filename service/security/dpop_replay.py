"""The DPoP replay cache (RFC 9449 §11.1): a proof's `jti` counts once on every worker
and replica while the proof could still be accepted.

With Redis: one atomic `SET key 1 NX EX ttl`. Without Redis: an INSERT into the shared
database, whose primary key decides; expired rows are swept by the upkeep (`health.py`).
The inserts are group-committed: while one batch is being written, the proofs that arrive
wait together and go in the next statement (`ON CONFLICT DO NOTHING ... RETURNING`), so a
busy process writes one transaction per batch, not one per request, and every answer
still waits for the database's decision. The same proof twice in one batch: the first
wins, without asking the database.

While Redis fails, the database decides (degraded: a proof first seen in Redis just
before the outage is not known there), and `dpop.replay_fallback` is logged at most once
per COMPLAINT_SECONDS. Nothing is kept in memory beyond the proofs waiting for their batch
(each one a request in progress), so a flood of proofs cannot grow it; both stores forget
an entry once its proof is too old to be accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import hashlib
import time
from typing import Any

from ..errors import ServiceUnavailable
from ..logging import get_logger
from ..store import dpop_proofs
from ..store.db import Database

PREFIX = "portcullis:dpop:"
COMPLAINT_SECONDS = 30.0
log = get_logger("portcullis.dpop")


class ReplayCache:
    def __init__(self, db: Database, redis: Any | None) -> None:
        self.db = db
        self.redis = redis
        self._next_complaint = 0.0
        # key hash → (seconds to keep it, the waiting request's answer), for the next batch
        self._waiting: dict[str, tuple[int, asyncio.Future[bool]]] = {}
        self._batch: dict[str, tuple[int, asyncio.Future[bool]]] = {}  # being written
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def first_use(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is seen within `ttl_seconds`, on any process."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        if self.redis is not None:
            try:
                return bool(await self.redis.set(PREFIX + digest, b"1", nx=True, ex=ttl_seconds))
            except Exception as exc:  # any Redis failure: the database decides
                if time.monotonic() >= self._next_complaint:
                    self._next_complaint = time.monotonic() + COMPLAINT_SECONDS
                    log.error("dpop.replay_fallback", reason=type(exc).__name__)
        if self._closed:  # shutting down: the database may be gone
            raise ServiceUnavailable("The service is shutting down.")
        if digest in self._waiting or digest in self._batch:
            return False  # the same proof is already on its way to the database
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[digest] = (ttl_seconds, answer)
        if self._writer is None or self._writer.done():
            # a context of its own: the writer serves every waiting request, not this one
            self._writer = asyncio.create_task(
                self._write_batches(), name="dpop-replay-writer", context=contextvars.Context()
            )
        return await answer

    async def _write_batches(self) -> None:
        try:
            while self._waiting:
                batch: dict[str, tuple[int, asyncio.Future[bool]]] = {}
                for digest in list(self._waiting)[: dpop_proofs.MAX_BATCH]:
                    batch[digest] = self._waiting.pop(digest)
                self._batch = batch
                try:
                    first = await dpop_proofs.record_first_uses(
                        self.db,
                        keys=batch.keys(),
                        ttl_seconds=max(ttl for ttl, _ in batch.values()),  # at least as asked
                    )
                except Exception as exc:  # the database failed: each waiting request hears so
                    _fail(batch, exc)
                    continue
                finally:
                    self._batch = {}
                for digest, (_, answer) in batch.items():
                    if not answer.done():  # a request cancelled meanwhile has no one to tell
                        answer.set_result(digest in first)
        except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
            self._fail_all(exc)
            raise

    def _fail_all(self, cause: BaseException) -> None:
        _fail(self._batch, cause)
        _fail(self._waiting, cause)
        self._batch, self._waiting = {}, {}

    async def close(self) -> None:
        """Refuse new proofs; wait for the batch being written (its requests are answered
        by then), bounded; a writer still busy then is cancelled and its waiters told."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is None or writer.done():
            return
        await asyncio.wait({writer}, timeout=2.0)
        if not writer.done():
            writer.cancel()
            await asyncio.wait({writer}, timeout=1.0)
            self._fail_all(asyncio.CancelledError())  # whatever the driver still awaits


def _fail(waiting: dict[str, tuple[int, asyncio.Future[bool]]], cause: BaseException) -> None:
    """Every unanswered request of `waiting` gets its own exception (a shared one would
    mix their tracebacks): a database error as itself, anything else as a 503."""
    for _, answer in waiting.values():
        if answer.done():
            continue
        error: Exception = ServiceUnavailable("The service is shutting down.")
        if isinstance(cause, Exception):
            with contextlib.suppress(Exception):  # an exception that cannot be copied
                error = copy.copy(cause)
        error.__cause__ = cause
        answer.set_exception(error)
