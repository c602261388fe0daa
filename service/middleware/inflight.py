"""The in-flight cap: at most `limit` requests in the app, then 503 after a short wait."""

from __future__ import annotations

import asyncio

from ..api.problems import send_problem
from .asgi import PROBES, ASGIApp, Receive, Scope, Send


class InflightLimitMiddleware:
    """At most `limit` requests in the app; a request waits `wait` seconds for a slot,
    then gets 503. Probes bypass the cap so they are never starved."""

    def __init__(self, app: ASGIApp, limit: int, wait: float) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # created lazily inside the serving event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            if self._slots.locked():  # only a full house pays for a timed wait
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
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()
