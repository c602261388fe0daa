"""The one cache type of the service: bounded, with an optional time to live per entry.

One eviction rule everywhere: when full, the entry stored first goes (insertion order).
Every cache is created and held by its owner (`Services`, or an object `Services`
holds), never at module level, so each app and each test has its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `max_entries`; with `ttl`, an entry is gone `ttl` seconds after `put`."""

    __slots__ = ("_entries", "clock", "max_entries", "ttl")

    def __init__(
        self,
        max_entries: int,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.ttl is not None and self.clock() > entry[0]:
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        entries = self._entries
        if key in entries:
            del entries[key]  # a replaced entry counts as stored now
        elif len(entries) >= self.max_entries:
            del entries[next(iter(entries))]
        expires = self.clock() + self.ttl if self.ttl is not None else 0.0
        entries[key] = (expires, value)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
