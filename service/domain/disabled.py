"""Keeps every process's list of disabled users and clients current.

A user or client can be disabled through the API, the CLI, or by hand in the database;
whichever way, its tokens must be refused on every route of every process within a
second. Each process reads the whole (small) set of disabled ids every
`POLL_SECONDS` and the request path checks a token against it in memory
(`Denylist.is_disabled`), so enforcement costs no I/O per request and needs no signal
from whoever disabled the record. A failed read keeps the last known set.
"""

from __future__ import annotations

import asyncio

from ..logging import get_logger
from ..security.denylist import Denylist
from ..store.db import Database
from ..store.disabled import disabled_ids

log = get_logger("portcullis.services")
POLL_SECONDS = 0.5


async def refresh(db: Database, denylist: Denylist) -> None:
    """Read the disabled ids once (at start-up, before serving, and from `watch`)."""
    denylist.disabled_users, denylist.disabled_clients = await disabled_ids(db)


async def watch(db: Database, denylist: Denylist, interval: float = POLL_SECONDS) -> None:
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh(db, denylist)
        except Exception as exc:  # database down: keep the last known set, say so once
            if not failing:
                log.warning("disabled.refresh_failed", reason=type(exc).__name__)
            failing = True
        else:
            failing = False
