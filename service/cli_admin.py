"""Operator commands for accounts, clients and keys: `set-password`, `users list|disable|
enable|set-role`, `clients list|disable|enable|rotate-secret`, `keys list`.

Lists print a table, or with `--json` one JSON array for scripts. A password comes from
the first line of stdin with `--password-stdin`, else from a prompt when stdin is a
terminal. Changes go through the same domain functions as the admin API (the last enabled
admin is kept, sessions and tokens are revoked through the signal bus), so every running
process applies them within its poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cli_support import fail

if TYPE_CHECKING:
    from .config import Settings
    from .security.passwords import PasswordService
    from .signalbus import SignalBus
    from .store.db import Database

ACTOR = "cli"
_PAGE = 500


@dataclass
class _Parts:
    """What these commands use (`domain.parts.Signalling` and `Accounts`)."""

    db: Database
    settings: Settings
    bus: SignalBus
    passwords: PasswordService


def add_commands(sub: Any, keys: argparse.ArgumentParser) -> None:
    """Register the commands on `portcullis`'s subparsers (and `keys list`'s flag)."""
    reset = sub.add_parser("set-password", help="reset a user's password (revokes its sessions)")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true")
    users = sub.add_parser("users", help="list or change users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    _json(users_sub.add_parser("list", help="every user"))
    for verb in ("disable", "enable"):
        users_sub.add_parser(verb, help=f"{verb} a user").add_argument("name")
    role = users_sub.add_parser("set-role", help="make a user an admin, or not")
    role.add_argument("name")
    role.add_argument("role", choices=["user", "admin"])
    clients = sub.add_parser("clients", help="list or change OAuth clients")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True)
    _json(clients_sub.add_parser("list", help="every client (never a secret)"))
    for verb in ("disable", "enable", "rotate-secret"):
        clients_sub.add_parser(verb, help=f"{verb} a client").add_argument("client_id")
    _json(keys)


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON array, for scripts")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of these; None otherwise."""
    if args.command == "keys" and args.action == "list":
        return _keys_list(settings, args.json)
    if args.command == "set-password":
        password = _read_password(args.password_stdin)
        if password is None:
            return fail("no password: pipe it with --password-stdin, or run on a terminal")
        return _with_parts(settings, lambda p: _set_password(p, args.name, password))
    if args.command == "users":
        return _with_parts(settings, lambda p: _users(p, args))
    if args.command == "clients":
        return _with_parts(settings, lambda p: _clients(p, args))
    return None


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        fail("the passwords differ")
        raise SystemExit(1)
    return first


def _with_parts(settings: Settings, command: Callable[[_Parts], Awaitable[int]]) -> int:
    from .security.blocking import BlockList
    from .security.denylist import Denylist
    from .security.passwords import PasswordService
    from .signalbus import SignalBus
    from .store.db import Database
    from .store.migrations import migrate

    async def main() -> int:
        db = Database(settings.database_dsn)
        passwords = PasswordService(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        # no Redis: the running processes read the signals at their next poll
        parts = _Parts(db, settings, SignalBus(db, Denylist(), BlockList()), passwords)
        try:
            await migrate(db)
            return await command(parts)
        finally:
            await db.close()
            passwords.close()

    return asyncio.run(main())


async def _set_password(parts: _Parts, name: str, password: str) -> int:
    from .domain import accounts
    from .errors import ValidationFailed

    try:
        user = await accounts.reset_password(parts, username=name, new=password, actor=ACTOR)
    except LookupError:
        return fail(f"no user named {name!r}")
    except ValidationFailed as exc:  # never echo the password itself
        return fail("; ".join(e["msg"] for e in exc.errors or []) or "invalid password")
    _print_one({"id": user.id, "username": user.username, "sessions": "revoked"})
    return 0


async def _users(parts: _Parts, args: argparse.Namespace) -> int:
    from .domain import identity
    from .errors import Conflict
    from .store import users as user_store

    if args.users_command == "list":
        rows = await _all(parts.db, user_store.list_users, lambda u: (u.created_us, u.id))
        _print_rows([_listed(u, "id", "username", "role") for u in rows], args.json)
        return 0
    user = await user_store.get_user_by_name(parts.db, username=args.name)
    if user is None:
        return fail(f"no user named {args.name!r}")
    changes: dict[str, Any] = (
        {"role": args.role}
        if args.users_command == "set-role"
        else {"disabled": args.users_command == "disable"}
    )
    try:
        changed = await identity.update_user(
            parts, user_id=user.id, changes=changes, actor=ACTOR, ip=""
        )
    except Conflict as exc:
        return fail(f"refused: {exc.detail}")
    if changed is None:  # deleted meanwhile
        return fail(f"no user named {args.name!r}")
    _print_one({"id": changed.id, "role": changed.role, "disabled": bool(changed.disabled)})
    return 0


async def _clients(parts: _Parts, args: argparse.Namespace) -> int:
    from .domain import clients
    from .store import clients as client_store

    command = args.clients_command
    if command == "list":
        rows = await _all(
            parts.db, client_store.list_clients, lambda c: (c.created_us, c.client_id)
        )
        _print_rows([_listed(c, "client_id", "name", "scopes") for c in rows], args.json)
        return 0
    client_id = args.client_id[:64]
    if command == "rotate-secret":
        secret = await clients.rotate_secret(parts, client_id=client_id, actor=ACTOR, ip=None)
        if secret is None:
            return fail(f"no client {client_id!r}")
        _print_one({"client_id": client_id, "client_secret": secret})
        return 0
    client = await clients.update_client(
        parts,
        client_id=client_id,
        changes={"disabled": command == "disable"},
        actor=ACTOR,
        ip=None,
    )
    if client is None:
        return fail(f"no client {client_id!r}")
    _print_one({"client_id": client.client_id, "disabled": bool(client.disabled)})
    return 0


async def _all(db: Database, fetch: Any, position: Callable[[Any], Any]) -> list[Any]:
    """Every row of a keyset-paged store list."""
    rows: list[Any] = []
    after = None
    while True:
        async with db.read() as conn:
            page = await fetch(conn, limit=_PAGE, after=after)
        rows.extend(page)
        if len(page) < _PAGE:
            return rows
        after = position(page[-1])


def _keys_list(settings: Settings, as_json: bool) -> int:
    from .security.keys import _activates, _retired_at, read_keys

    path = settings.keys_file
    try:
        keys = read_keys(path)
    except FileNotFoundError:
        return fail(f"no signing key file at {path} (PORTCULLIS_SIGNING_KEYS_FILE)")
    except (OSError, ValueError) as exc:
        return fail(f"cannot read the signing key file {path}: {exc}")
    now = time.time()
    rows = []
    for index, key in enumerate(keys):
        retired = _retired_at(keys, index, now)
        created = key.get("iat")
        rows.append(
            {
                "kid": key["kid"],
                "alg": key["alg"],
                "created": _iso(created) if isinstance(created, int | float) else None,
                "activates": _iso(_activates(key) or created or 0),
                "retired": _iso(retired) if retired is not None else None,
            }
        )
    _print_rows(rows, as_json)
    return 0


def _listed(row: Any, *fields: str) -> dict[str, Any]:
    """A user or client row as a list shows it: the named fields, then its state and age."""
    named = {name: getattr(row, name) for name in fields}
    return named | {"disabled": bool(row.disabled), "created": _iso(row.created_us / 1e6)}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _print_one(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")


def _print_rows(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(list(rows)) + "\n")
        return
    if not rows:
        sys.stdout.write("(none)\n")
        return
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    for line in [columns, ["-" * w for w in widths], *cells]:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        sys.stdout.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
