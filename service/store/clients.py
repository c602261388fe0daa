"""OAuth clients: the admin list, changes, and secret rotation (creation and the
per-request read are in `users.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import typed_row
from .tables import clients
from .users import ClientRow


async def list_clients(
    conn: AsyncConnection, *, limit: int, after: tuple[int, str] | None
) -> list[ClientRow]:
    """Newest first, keyset-paged by (created_us, client_id)."""
    query = (
        select(clients)
        .order_by(clients.c.created_us.desc(), clients.c.client_id.desc())
        .limit(limit)
    )
    if after is not None:
        created, last_id = after
        query = query.where(
            (clients.c.created_us < created)
            | ((clients.c.created_us == created) & (clients.c.client_id < last_id))
        )
    return [typed_row(ClientRow, row) for row in await conn.execute(query)]


async def get_client(
    conn: AsyncConnection, *, client_id: str, lock: bool = False
) -> ClientRow | None:
    """The client; with `lock`, its row stays locked until the transaction ends."""
    query = select(clients).where(clients.c.client_id == client_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return typed_row(ClientRow, row) if row else None


async def update_client(
    conn: AsyncConnection, *, client_id: str, changes: dict[str, Any]
) -> ClientRow | None:
    """Set `disabled` and/or `scopes` (space-separated); the client as it is now."""
    allowed = {k: v for k, v in changes.items() if k in ("disabled", "scopes")}
    if allowed:
        await conn.execute(
            update(clients).where(clients.c.client_id == client_id).values(**allowed)
        )
    return await get_client(conn, client_id=client_id)


async def set_client_secret(conn: AsyncConnection, *, client_id: str, secret_hash: str) -> bool:
    """Replace the client's secret hash; False when there is no such client."""
    result = await conn.execute(
        update(clients).where(clients.c.client_id == client_id).values(secret_hash=secret_hash)
    )
    return bool(result.rowcount == 1)
