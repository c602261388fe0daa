"""Argon2id runs below the event loop's scheduling priority (security/passwords.py), so
logins alongside load cannot push the request path's tail latency up."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from service.security.passwords import HASH_NICENESS, PasswordService


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
async def test_hashing_threads_are_niced_below_the_event_loop() -> None:
    service = PasswordService(memory_kib=1024, time_cost=1, parallelism=1)
    loop_niceness = _own_niceness()
    hashing = await service._run(lambda: str(_own_niceness()))
    assert int(str(hashing)) == min(loop_niceness + HASH_NICENESS, 19)
    assert _own_niceness() == loop_niceness  # the event loop's thread is untouched
    stored = await service.hash("correct horse battery staple")
    assert await service.verify_or_dummy(stored, "correct horse battery staple")
