"""The password policy's list of common passwords is data of the `PasswordService` that
`Services` holds: read from the package by `open()` (off the event loop, in
`Services.open`) or, for a caller that never opened it, on first use; never at
construction, and once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.security import passwords
from service.security.passwords import PasswordService

COMMON = "is a commonly used password"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count: list[int] = []
    read = passwords.read_common_passwords

    def counted() -> frozenset[str]:
        count.append(1)
        return read()

    monkeypatch.setattr(passwords, "read_common_passwords", counted)
    return count


@pytest.fixture
def service() -> Iterator[PasswordService]:
    svc = PasswordService(memory_kib=1024, time_cost=1, parallelism=1)
    yield svc
    svc.close()


async def test_open_reads_the_list_once(reads: list[int], service: PasswordService) -> None:
    assert reads == []  # construction reads nothing
    service.open()
    service.open()
    assert COMMON in await service.problems("password1234", "alice")
    assert await service.problems("Tr4vel-Quietly-Under-Oak", "alice") == []
    assert len(reads) == 1


async def test_without_open_the_list_is_read_on_first_use(
    reads: list[int], service: PasswordService
) -> None:
    assert COMMON in await service.problems("qwertyuiop123", "alice")
    assert COMMON in await service.problems("password1234", "bob")
    assert len(reads) == 1
