"""OAuth client administration: changes and secret rotation (creation is in
`identity.py`).

Disabling or narrowing a client revokes its tokens on every process through the signal
bus: a `subject` signal refuses the client's tokens issued up to a moment after the change
that carry a scope it no longer has (all of them when disabled). The moment covers a
process that still authenticated the client from its cached row (dropped by the same
signal) while the change committed.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..security.tokens import LEEWAY_SECONDS
from ..store import audit
from ..store import clients as client_store
from ..store.users import ClientRow
from .identity import sha256
from .parts import Signalling
from .records import Record

# Tokens issued this long after the change are still refused (see the module docstring).
STALE_GRANT_SECONDS = 2


async def update_client(
    svc: Signalling, *, client_id: str, changes: dict[str, Any], actor: str, ip: str | None
) -> ClientRow | None:
    """Set `disabled` and/or `scopes` (a list); None when there is no such client."""
    values = dict(changes)
    if "scopes" in values:
        values["scopes"] = " ".join(sorted(set(values["scopes"])))
    async with svc.db.begin() as conn:
        before = await client_store.get_client(conn, client_id=client_id, lock=True)
        if before is None:
            return None
        client = await client_store.update_client(conn, client_id=client_id, changes=values)
        if client is None:
            return None
        kept = frozenset() if client.disabled else frozenset(client.scopes.split())
        if not frozenset(before.scopes.split()) <= kept:  # disabled or narrowed
            access_ttl = svc.settings.access_token_ttl
            exp_until = int(time.time()) + STALE_GRANT_SECONDS + access_ttl
            await svc.bus.record(
                conn,
                kind="subject",
                value=client_id,
                until=exp_until + LEEWAY_SECONDS,
                data=" ".join([str(exp_until), *sorted(kept)]),
            )
        await _forget(svc, conn, client_id)
        if client.disabled != before.disabled:
            event = "client.disabled" if client.disabled else "client.enabled"
            await audit.record(conn, event=event, actor=actor, target=client_id, ip=ip)
        if client.scopes != before.scopes:
            await audit.record(
                conn, event="client.scopes_changed", actor=actor, target=client_id, ip=ip
            )
    await svc.bus.announce()
    return client


async def rotate_secret(
    svc: Signalling, *, client_id: str, actor: str, ip: str | None
) -> str | None:
    """A new secret (returned once, stored as a hash); the old one stops working at
    once. None when there is no such client."""
    secret = secrets.token_urlsafe(32)
    async with svc.db.begin() as conn:
        if not await client_store.set_client_secret(
            conn, client_id=client_id, secret_hash=sha256(secret)
        ):
            return None
        await _forget(svc, conn, client_id)
        await audit.record(
            conn, event="client.secret_rotated", actor=actor, target=client_id, ip=ip
        )
    await svc.bus.announce()
    return secret


async def _forget(svc: Signalling, conn: Any, client_id: str) -> None:
    """Every process drops its cached copy of the client (store/records)."""
    await svc.bus.record_changed(conn, Record("client", client_id))
