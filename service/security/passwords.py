"""Argon2id password hashing off the event loop, and the password policy.

Parameters meet the OWASP Password Storage cheat sheet (m=19 MiB, t=2, p=1 minimum).
Hashing runs in a small dedicated thread pool (argon2-cffi releases the GIL), bounded so
a login burst cannot exhaust memory. Its threads run at a lower scheduling priority (Linux
nice +10) than the event loop: when both want the same core, requests go first and logins
wait (measured by `make bench`: logins alongside pushed the p99 of `/v1/users/me` past
twice its own). `verify_or_dummy` spends the same work when the user does not exist, so
an unknown user and a wrong password cost the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .. import tracing

MIN_LENGTH, MAX_LENGTH = 12, 128
# A password needs this many independent parts, where a repeated run (`aaaa`), a
# sequence (`abcd`, `4321`) or a copy of an earlier stretch (`abcabc`) counts as one.
MIN_PARTS = 8


HASH_NICENESS = 10  # added to the hashing threads' nice value


def yield_to_requests() -> None:
    """In each hashing thread, once: lower its own priority (Linux nice values are per
    thread). Nothing changes where that is not possible."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            tid = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICENESS
            )


class PasswordService:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2),
            thread_name_prefix="argon2",
            initializer=yield_to_requests,
        )
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._common: frozenset[str] | None = None  # the policy's list, read by `open`

    def open(self) -> None:
        """Read the policy's list of common passwords from the package, once (file I/O:
        `Services.open` runs it off the event loop)."""
        if self._common is None:
            self._common = read_common_passwords()

    async def problems(self, password: str, username: str) -> list[str]:
        """What the password policy has against `password` (`password_problems`). A
        caller that did not `open` (the command line) has the list read now, in a thread."""
        common = self._common
        if common is None:
            common = self._common = await asyncio.to_thread(read_common_passwords)
        return password_problems(password, username, common)

    async def _run(self, fn: object, *args: str) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        with tracing.span("argon2.hash"):
            return str(await self._run(self.hasher.hash, password))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_or_dummy(self, stored: str | None, password: str) -> bool:
        """Verify; with no stored hash, burn the same time on a dummy and fail."""
        with tracing.span("argon2.verify"):
            ok = await self._run(self._verify, stored or self._dummy_hash, password)
        return bool(ok) and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def read_common_passwords() -> frozenset[str]:
    """The package's list of common passwords, lower-cased (reads a file)."""
    text = resources.files("service.security").joinpath("common-passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, username: str, common: frozenset[str]) -> list[str]:
    """The policy of the contract: 12..128 characters, not in `common`, not the
    username; and not made of repeats and sequences."""
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    lowered = password.lower()
    if lowered in common:
        problems.append("is a commonly used password")
    if username and username.lower() in lowered and len(username) >= max(3, len(lowered) // 2):
        problems.append("must not be (or be built from) the username")
    if len(set(password)) < 4:
        problems.append("has too few distinct characters")
    elif pattern_parts(password) < MIN_PARTS:
        problems.append(
            "is too repetitive or sequential (runs like 'aaaa', 'abcd', '4321' or "
            "repeats like 'abcabc' count as one character)"
        )
    return problems


def pattern_parts(password: str) -> int:
    """How many parts `password` is made of, reading left to right: each part is one
    character, a run of 3+ characters stepping by -1, 0 or +1 (`aaa`, `abc`, `321`), or
    a copy of 3+ characters seen before (`abcabc`)."""
    text = password.lower()
    size = len(text)
    parts = i = 0
    while i < size:
        copy = 0  # the longest stretch from i that also starts somewhere before i
        while i + copy < size and text.find(text[i : i + copy + 1], 0, i + copy) != -1:
            copy += 1
        run = 1
        if i + 1 < size and ord(text[i + 1]) - ord(text[i]) in (-1, 0, 1):
            step, run = ord(text[i + 1]) - ord(text[i]), 2
            while i + run < size and ord(text[i + run]) - ord(text[i + run - 1]) == step:
                run += 1
        parts += 1
        i += max(copy if copy >= 3 else 1, run if run >= 3 else 1)
    return parts
