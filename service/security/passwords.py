"""Argon2id password hashing off the event loop, and the password policy.

Parameters meet the OWASP Password Storage cheat sheet (m=19 MiB, t=2, p=1 minimum).
Hashing runs in a small dedicated thread pool (argon2-cffi releases the GIL), bounded so
a login burst cannot exhaust memory. `verify_or_dummy` spends the same work when the
user does not exist, so an unknown user and a wrong password cost the same.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH, MAX_LENGTH = 12, 128


class PasswordService:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2"
        )
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    async def _run(self, fn: object, *args: str) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        return str(await self._run(self.hasher.hash, password))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_or_dummy(self, stored: str | None, password: str) -> bool:
        """Verify; with no stored hash, burn the same time on a dummy and fail."""
        ok = await self._run(self._verify, stored or self._dummy_hash, password)
        return bool(ok) and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("service.security").joinpath("common-passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, username: str) -> list[str]:
    """The policy of the contract: 12..128 characters, not common, not the username."""
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    lowered = password.lower()
    if lowered in common_passwords():
        problems.append("is a commonly used password")
    if username and username.lower() in lowered and len(username) >= max(3, len(lowered) // 2):
        problems.append("must not be (or be built from) the username")
    if len(set(password)) < 4:
        problems.append("has too few distinct characters")
    return problems
