"""The in-flight cap: at most `limit` requests in the app, then 503 after a short wait."""

from __future__ import annotations

import asyncio

from ..api.problems import send_problem
from .asgi import Send


class Slots:
    """At most `limit` requests in the app; a request waits `wait` seconds for a slot,
    then gets 503. (Probes bypass the cap so they are never starved: the caller skips
    them.)"""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self._slots: asyncio.Semaphore | None = None
        self.active = 0  # slots taken

    async def enter(self, send: Send) -> bool:
        """True with a slot taken (give it back with `leave`), else False once the 503
        is sent."""
        if self._slots is None:  # created lazily inside the serving event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            # Only a full house pays for a timed wait. (`active`, not `locked()`, which
            # walks the semaphore's waiters on every call.)
            if self.active >= self.limit:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.wait)
            else:
                await self._slots.acquire()
        except TimeoutError:
            await send_problem(
                send,
                503,
                detail="The server is overloaded; retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        if self._slots is not None:
            self.active -= 1
            self._slots.release()
