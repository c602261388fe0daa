"""Users and OAuth clients."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Conn, first, now_us, rows, typed_row
from .tables import clients, users


class UsernameTaken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    username: str
    password_hash: str
    role: str
    disabled: bool
    created_us: int
    updated_us: int


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    name: str
    secret_hash: str
    scopes: str  # space-separated
    disabled: bool
    created_us: int
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2 client metadata


# The hot statements are built once: building a statement and its cache key per call
# costs about as much as running it on SQLite.
_GET_USER = select(users).where(users.c.id == bindparam("user_id"))
_GET_USER_FOR_UPDATE = _GET_USER.with_for_update()
_GET_USER_BY_NAME = select(users).where(users.c.username == bindparam("username"))
_GET_CLIENT = select(clients).where(clients.c.client_id == bindparam("client_id"))


async def create_user(
    conn: AsyncConnection, *, username: str, password_hash: str, role: str
) -> UserRow:
    now = now_us()
    user = UserRow(
        id=str(uuid.uuid4()),
        username=username,
        password_hash=password_hash,
        role=role,
        disabled=False,
        created_us=now,
        updated_us=now,
    )
    try:
        async with conn.begin_nested():
            await conn.execute(users.insert().values(**asdict(user)))
    except IntegrityError:
        raise UsernameTaken(username) from None
    return user


async def get_user(conn: Conn, *, user_id: str, lock: bool = False) -> UserRow | None:
    """The user; with `lock` (in a transaction), its row stays locked until the
    transaction ends (PostgreSQL `FOR UPDATE`; SQLite's write transactions are serial)."""
    query = _GET_USER_FOR_UPDATE if lock else _GET_USER
    row = await first(conn, query, {"user_id": user_id})
    return typed_row(UserRow, row) if row else None


async def get_user_by_name(conn: Conn, *, username: str) -> UserRow | None:
    row = await first(conn, _GET_USER_BY_NAME, {"username": username})
    return typed_row(UserRow, row) if row else None


async def set_password_hash(conn: AsyncConnection, *, user_id: str, password_hash: str) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_us=now_us())
    )


async def update_user(
    conn: AsyncConnection, *, user_id: str, changes: dict[str, Any]
) -> UserRow | None:
    allowed = {k: v for k, v in changes.items() if k in ("disabled", "role")}
    if allowed:
        await conn.execute(
            update(users).where(users.c.id == user_id).values(**allowed, updated_us=now_us())
        )
    return await get_user(conn, user_id=user_id)


async def list_users(conn: Conn, *, limit: int, after: tuple[int, str] | None) -> list[UserRow]:
    """Newest first, keyset-paged by (created_us, id)."""
    query = select(users).order_by(users.c.created_us.desc(), users.c.id.desc()).limit(limit)
    if after is not None:
        created, last_id = after
        query = query.where(
            (users.c.created_us < created)
            | ((users.c.created_us == created) & (users.c.id < last_id))
        )
    return [typed_row(UserRow, row) for row in await rows(conn, query, {})]


async def create_client(
    conn: AsyncConnection,
    *,
    client_id: str,
    name: str,
    secret_hash: str,
    scopes: str,
    dpop_bound_access_tokens: bool = False,
) -> ClientRow:
    client = ClientRow(
        client_id=client_id,
        name=name,
        secret_hash=secret_hash,
        scopes=scopes,
        disabled=False,
        created_us=now_us(),
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )
    await conn.execute(clients.insert().values(**asdict(client)))
    return client


async def get_client(conn: Conn, *, client_id: str) -> ClientRow | None:
    row = await first(conn, _GET_CLIENT, {"client_id": client_id})
    return typed_row(ClientRow, row) if row else None
