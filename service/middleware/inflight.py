"""The in-flight cap: at most `limit` requests in the app, a fair share per client
address, then 503 after a short wait."""

from __future__ import annotations

import asyncio
from collections import deque

from ..problem import send_problem
from .asgi import Send

_OVERLOADED = [(b"retry-after", b"1")]


class Slots:
    """At most `limit` requests in the app; a request waits `wait` seconds for a slot,
    then gets 503. (Probes bypass the cap so they are never starved: the caller skips
    them.)

    A few client addresses cannot take every slot (a slow request body holds its slot
    until the body is in or times out): once no more than `reserve` (a quarter) of the
    slots are free, an address holding `share` (a sixteenth) or more waits, and the
    free slots go to the others. So up to a dozen addresses together hold at most three
    quarters of the slots, however many requests they send; a freed slot goes to the
    longest-waiting request whose address may take it. With the cap nearly free one
    address may use it all."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self.share = max(1, limit // 16)
        self.reserve = limit // 4
        self.active = 0  # slots taken
        self.held: dict[str, int] = {}  # slots taken, by client address key
        self.waiting: deque[tuple[str, asyncio.Future[None]]] = deque()

    def _may_take(self, key: str) -> bool:
        free = self.limit - self.active
        return free > 0 and (free > self.reserve or self.held.get(key, 0) < self.share)

    def _take(self, key: str) -> None:
        self.active += 1
        self.held[key] = self.held.get(key, 0) + 1

    async def enter(self, key: str, send: Send) -> bool:
        """True with a slot taken for the address `key` (give it back with `leave`),
        else False once the 503 is sent. Only a request that must wait awaits."""
        if self._may_take(key):
            self._take(key)
            return True
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (key, ticket)
        self.waiting.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await ticket
            return True
        except BaseException as exc:
            if ticket.done() and not ticket.cancelled():
                self.leave(key)  # handed a slot just as the wait ended: give it back
            else:
                ticket.cancel()
                self.waiting.remove(entry)
            if not isinstance(exc, TimeoutError):
                raise
        await send_problem(
            send, 503, detail="The server is overloaded; retry shortly.", headers=_OVERLOADED
        )
        return False

    def leave(self, key: str) -> None:
        self.active -= 1
        held = self.held[key] - 1
        if held:
            self.held[key] = held
        else:
            del self.held[key]
        if self.waiting:
            self._hand_over()

    def _hand_over(self) -> None:
        """Give the freed slot to the longest-waiting request that may take it."""
        for entry in self.waiting:
            key, ticket = entry
            if not ticket.done() and self._may_take(key):
                self.waiting.remove(entry)
                self._take(key)
                ticket.set_result(None)
                return
