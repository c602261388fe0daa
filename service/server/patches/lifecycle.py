"""The process around the protocols: the drain before Hypercorn's graceful stop, and the
master's exit status when a worker fails at start-up (docs/upstream.md).

Drain: Hypercorn closes its listening sockets the moment its shutdown trigger fires, while a
load balancer still routes new connections to the replica. The trigger Hypercorn's worker
waits for is wrapped: when the real one fires (SIGTERM/SIGINT in a single process, or the
master's shutdown event with workers), `begin` runs at once (`/readyz` answers 503) and the
worker keeps serving for the drain seconds before Hypercorn's own graceful stop begins. A
second signal ends the drain early. Hypercorn takes no shutdown trigger from its
configuration, so the hook is `hypercorn.asyncio.run.worker_serve`, which each worker looks
up after importing the application.

Exit status: `hypercorn.run.run` records a failed worker's exit code, then overwrites it
with a second `_join_exited()` over the emptied process list, so the master exits 0 when
every worker failed at start-up (pgjones/hypercorn#269). `_join_exited` is wrapped to
remember the first failure; `exit_status` gives it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.asyncio.run as worker_run
import hypercorn.run as master_run

from ...logging import get_logger
from .. import tls
from .upstream import replaces

log = get_logger("portcullis.server")
Trigger = Callable[[], Awaitable[Any]]

_upstream_worker_serve = replaces(
    "hypercorn.asyncio.run.worker_serve",
    getattr(worker_run.worker_serve, "portcullis_upstream", worker_run.worker_serve),
    "ae30269c42b954423c2b8c9f1300be2663d269dccdde3e85fb785b328ea4b2ef",
)
_upstream_join_exited = replaces(
    "hypercorn.run._join_exited",
    getattr(master_run._join_exited, "portcullis_upstream", master_run._join_exited),
    "c30fcc788b572583b6d03c55d4340506dfc61d71835ae63fdbedebd1227f49ac",
)
# Not replaced, but the exit-status workaround exists because of its body: when Hypercorn
# fixes #269 this hash changes, the test names it, and the workaround can go.
replaces(
    "hypercorn.run.run",
    master_run.run,
    "d84ea71e1b5fc6287e32d84a13ced6b21a596a5fb2f90b71eff5e37550376438",
)


class _Drain:
    """What the worker does when told to stop: set by the application (`drain_with`)."""

    begin: Callable[[], None] = staticmethod(lambda: None)
    seconds: float = 0.0


_failures: list[int] = []


def drain_with(begin: Callable[[], None], seconds: float) -> None:
    """On shutdown, call `begin` at once and keep serving for `seconds`."""
    _Drain.begin = begin
    _Drain.seconds = seconds


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


def draining_trigger(trigger: Trigger | None) -> Callable[[], Awaitable[None]]:
    """A shutdown trigger that fires the drain seconds after `trigger` (or a signal) did,
    having called the drain's `begin` at once."""

    async def drained() -> None:
        second = asyncio.Event()
        await (trigger() if trigger is not None else _signal_trigger(second))
        _Drain.begin()
        log.info("server.draining", seconds=_Drain.seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(second.wait(), timeout=_Drain.seconds)
        log.info("server.drained")

    return drained


async def worker_serve(
    app: Any, config: Any, *, sockets: Any = None, shutdown_trigger: Trigger | None = None
) -> None:
    if config.ssl_enabled and not tls.groups_configured():
        log.warning(
            "server.tls_groups_default",
            reason="OpenSSL started without the service's configuration: key-exchange groups "
            "are OpenSSL's defaults; start the server with `portcullis serve`",
        )
    await _upstream_worker_serve(
        app, config, sockets=sockets, shutdown_trigger=draining_trigger(shutdown_trigger)
    )


def _join_exited(processes: list[Any]) -> int:
    code: int = _upstream_join_exited(processes)
    if code != 0:
        _failures.append(code)
    return code


def exit_status(returned: int) -> int:
    """The master's exit status: Hypercorn's, or the first failed worker's when Hypercorn
    lost it; a worker killed by signal N gives 128 + N."""
    code = returned or (_failures[0] if _failures else 0)
    return 128 - code if code < 0 else code


worker_serve.portcullis_upstream = _upstream_worker_serve  # type: ignore[attr-defined]
_join_exited.portcullis_upstream = _upstream_join_exited  # type: ignore[attr-defined]


def install() -> None:
    worker_run.worker_serve = worker_serve
    master_run._join_exited = _join_exited
