"""Keyset pages for every list: the position a `cursor` names, and the page out.

A list asks for `limit + 1` rows after the position its cursor names (`keyset`, or
`last_id` for lists ordered by id alone); `page` keeps `limit` of them and issues the
next cursor from the last one kept when there was one more. `read_page` does both for a
store function `fetch(conn, *, limit, after)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..errors import BadRequest
from ..models.common import Page, PageQuery, decode_cursor, encode_cursor
from ..store.db import Database

R = TypeVar("R")
P = TypeVar("P", bound=Page[Any])


def cursor_after(raw: str | None, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The position a page's `cursor` names (None for the first page); 400 for any
    cursor this service did not issue, on every paged list."""
    if raw is None:
        return None
    try:
        return decode_cursor(raw, kinds)
    except ValueError:
        raise BadRequest("The cursor is not one this service issued.") from None


def keyset(raw: str | None) -> tuple[int, str] | None:
    """A (time, id) position, for lists ordered newest first."""
    after = cursor_after(raw, (int, str))
    return (int(after[0]), str(after[1])) if after else None


def last_id(raw: str | None) -> int | None:
    """An id position, for lists ordered by id alone."""
    after = cursor_after(raw, (int,))
    return int(after[0]) if after else None


def page(
    model: type[P],
    rows: Sequence[R],
    limit: int,
    public: Callable[[R], Any],
    position: Callable[[R], tuple[int | str, ...]],
) -> P:
    """`limit` rows (of up to `limit + 1`) as `model`, with the cursor of the next page."""
    items = rows[:limit]
    more = len(rows) > limit
    return model(
        items=[public(row) for row in items],
        next_cursor=encode_cursor(*position(items[-1])) if more else None,
    )


async def read_page(
    db: Database,
    fetch: Callable[..., Awaitable[Sequence[R]]],
    query: PageQuery,
    model: type[P],
    public: Callable[[R], Any],
    position: Callable[[R], tuple[int | str, ...]],
    *,
    cursor: Callable[[str | None], Any] = keyset,
) -> P:
    """One page of `fetch(conn, *, limit, after)`, read in a read-only transaction."""
    after = cursor(query.cursor)
    async with db.read() as conn:
        rows = await fetch(conn, limit=query.limit + 1, after=after)
    return page(model, rows, query.limit, public, position)
