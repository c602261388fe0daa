"""Graceful drain: on SIGTERM, fail readiness first, keep serving, then let Hypercorn stop.

Hypercorn closes its listening sockets the moment its shutdown trigger fires, while a
load balancer (or Kubernetes' endpoints controller) still routes new connections to
the replica, so those requests are refused. Here the trigger Hypercorn waits for is
wrapped: when the real one fires (SIGTERM/SIGINT in a single process, or the master's
shutdown event with `--workers N`), the service is marked draining — `/readyz` answers
503 at once — and serves normally for `PORTCULLIS_DRAIN_SECONDS` before Hypercorn's own
graceful stop (`graceful_timeout`) begins. A second signal ends the drain early.

Hypercorn takes no shutdown trigger from its configuration, so the one place to hook is
`hypercorn.asyncio.run.worker_serve`, which each worker looks up after importing the
application (`service.asgi`); the wrapper is installed from there, once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from .logging import get_logger

log = get_logger("portcullis.drain")
Trigger = Callable[[], Awaitable[Any]]


async def _signal_trigger(second: asyncio.Event) -> None:
    """Wait for SIGTERM or SIGINT (what Hypercorn waits for in a single process)."""
    loop = asyncio.get_running_loop()
    first = asyncio.Event()

    def handler() -> None:
        (second if first.is_set() else first).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)
    await first.wait()


def draining_trigger(
    trigger: Trigger | None, begin: Callable[[], None], seconds: float
) -> Callable[[], Awaitable[None]]:
    """A shutdown trigger that fires `seconds` after `trigger` (or a signal) did, having
    called `begin` at once."""

    async def drained() -> None:
        second = asyncio.Event()
        await (trigger() if trigger is not None else _signal_trigger(second))
        begin()
        log.info("server.draining", seconds=seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(second.wait(), timeout=seconds)
        log.info("server.drained")

    return drained


def install(begin: Callable[[], None], seconds: float) -> None:
    """Wrap Hypercorn's worker so its shutdown trigger drains first (idempotent)."""
    try:
        from hypercorn.asyncio import run
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return
    original = run.worker_serve
    if getattr(original, "portcullis_drain", False):
        return

    async def worker_serve(
        app: Any, config: Any, *, sockets: Any = None, shutdown_trigger: Trigger | None = None
    ) -> None:
        trigger = draining_trigger(shutdown_trigger, begin, seconds)
        await original(app, config, sockets=sockets, shutdown_trigger=trigger)

    worker_serve.portcullis_drain = True  # type: ignore[attr-defined]
    run.worker_serve = worker_serve
