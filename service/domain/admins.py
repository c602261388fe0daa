"""The last enabled admin: no change may leave the service without one (409)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import Conflict
from ..store import accounts as account_store


def removes_an_admin(changes: Mapping[str, object]) -> bool:
    """Could this change of a user take an enabled admin away (disable or demote)?"""
    return changes.get("disabled") is True or changes.get("role") == "user"


async def keep_an_admin(conn: AsyncConnection, *, user_id: str) -> None:
    """Refuse (409) when `user_id` is the only enabled admin. Call it first in the
    transaction that disables, demotes or deletes the user: it locks every enabled
    admin's row (in id order, before the target row), so two such changes take turns and
    the second one sees the first one's result."""
    if await account_store.lock_enabled_admins(conn) == [user_id]:
        raise Conflict("That would leave no enabled administrator.")
