"""Command line (`portcullis`, or `python -m service`): serve, migrate, create-user,
create-client, keys rotate, check-config, certs."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .cli_admin import add_commands
from .cli_admin import run as run_admin_command
from .cli_checks import check_connections
from .cli_support import fail, load_settings_or_exit
from .config import Settings
from .version import package_version

if TYPE_CHECKING:
    from .security.passwords import PasswordService
    from .store.db import Database


def _field_error(error: Any) -> str:
    """`field: message` for one pydantic error, without pydantic's "Value error, " noise."""
    field, message = str(error["loc"][0]) if error["loc"] else "", str(error["msg"])
    message = message.removeprefix("Value error, ")
    return message if not field or message.startswith(field) else f"{field}: {message}"


def _out(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")


async def _migrate(settings: Settings) -> int:
    from .store.db import Database
    from .store.migrations import latest_version, migrate

    db = Database.for_settings(settings)
    try:
        applied = await migrate(db)
    finally:
        await db.close()
    _out({"applied": applied, "version": latest_version()})
    return 0


@dataclass
class _Accounts:
    """What the account commands use (`domain.parts.Accounts`): no Redis, limiter or keys."""

    db: Database
    passwords: PasswordService


def _accounts(settings: Settings) -> _Accounts:
    from .security.passwords import PasswordService
    from .store.db import Database

    return _Accounts(
        db=Database.for_settings(settings),
        passwords=PasswordService(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        ),
    )


async def _create_user(settings: Settings, name: str, role: str) -> int:
    from .domain import identity
    from .errors import Conflict, ValidationFailed
    from .models.users import RegisterIn
    from .store.migrations import migrate

    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if not re.fullmatch(r"[a-z0-9_.-]{3,32}", name):
        return fail("username must be 3..32 of [a-z0-9_.-]")
    try:
        password = RegisterIn(username=name, password=password).password
    except ValidationError as exc:  # never echo the password itself
        return fail("; ".join(_field_error(e) for e in exc.errors()))
    svc = _accounts(settings)  # a database and a password hasher: nothing else to start
    try:
        await migrate(svc.db)
        user = await identity.register(svc, username=name, password=password, role=role)
    except ValidationFailed as exc:
        return fail("; ".join(e["msg"] for e in exc.errors or []) or "invalid input")
    except Conflict:
        return fail(f"the username {name!r} is taken")
    finally:
        await svc.db.close()
        svc.passwords.close()
    _out({"id": user.id, "username": user.username})
    return 0


async def _create_client(settings: Settings, name: str, scope: str, dpop: bool = False) -> int:
    from .domain import identity
    from .errors import ValidationFailed
    from .models.users import ALL_SCOPES, ClientCreate
    from .store.migrations import migrate

    scopes = scope.split()
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        given = f"unknown scope {', '.join(map(repr, unknown))}" if unknown else "no scope given"
        return fail(f"invalid --scope: {given}; allowed: {', '.join(sorted(ALL_SCOPES))}")
    try:
        data = ClientCreate(name=name, scopes=scopes)  # type: ignore[arg-type]
    except ValidationError as exc:
        return fail(
            "invalid client: "
            + "; ".join(
                f"{'name' if e['loc'][0] == 'name' else '--scope'}: "
                + str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors(include_url=False)
            )
        )
    svc = _accounts(settings)
    try:
        await migrate(svc.db)
        created = await identity.create_client(
            svc,
            name=data.name,
            scopes=list(data.scopes),
            actor="cli",
            ip=None,
            dpop_bound_access_tokens=dpop,
        )
    except ValidationFailed:
        return fail("invalid scopes")
    finally:
        await svc.db.close()
        svc.passwords.close()
    _out({"client_id": created.client_id, "client_secret": created.client_secret})
    return 0


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["serve"]:  # its own options: service/server/serve.py
        from .server.serve import main as serve

        return serve(args_in[1:])
    parser = argparse.ArgumentParser(prog="portcullis", description=__doc__)
    parser.add_argument("--version", action="version", version=f"portcullis {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve",
        help="run the service under Hypercorn, with TLS (portcullis serve --help)",
    )
    sub.add_parser("migrate", help="create or upgrade the database schema")
    user = sub.add_parser("create-user", help="create a user (password on stdin)")
    user.add_argument("name")
    user.add_argument("--role", choices=["user", "admin"], default="user")
    user.add_argument("--password-stdin", action="store_true", required=True)
    client = sub.add_parser("create-client", help="create an OAuth client")
    client.add_argument("name")
    client.add_argument("--scope", required=True)
    client.add_argument("--dpop-bound", action="store_true", help="refuse tokens without DPoP")
    keys = sub.add_parser("keys", help="signing keys")
    keys.add_argument("action", choices=["rotate", "list"])
    keys.add_argument(
        "--activate-now",
        action="store_true",
        help="sign with the new key at once (emergencies: verifiers that have not fetched "
        "the JWKS since reject its tokens until they do)",
    )
    add_commands(sub, keys)  # set-password, users, clients, keys list (cli_admin.py)
    check = sub.add_parser("check-config", help="validate and print the configuration")
    check.add_argument("--connect", action="store_true", help="also reach the database and Redis")
    certs = sub.add_parser("certs", help="create the development CA and certificate")
    certs.add_argument("--dir", default="certs")
    args = parser.parse_args(args_in)

    if args.command == "certs":
        from .devcerts import make_dev_certs

        paths = make_dev_certs(Path(args.dir))
        _out({k: str(v) for k, v in paths.items()})
        return 0
    # Each command checks what it uses: only the server (and check-config, which answers
    # "would it start?") needs the certificate and the signing key file. `migrate` and the
    # account commands use the database, `keys rotate` creates the key file.
    settings = load_settings_or_exit(serving=args.command == "check-config")
    if args.command == "check-config":
        _out(settings.redacted())
        return check_connections(settings) if args.connect else 0
    handled = run_admin_command(args, settings)
    if handled is not None:
        return handled
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "create-user":
        return asyncio.run(_create_user(settings, args.name, args.role))
    if args.command == "create-client":
        return asyncio.run(_create_client(settings, args.name, args.scope, args.dpop_bound))
    if args.command == "keys":
        from .security.keys import rotate

        key = rotate(
            settings.keys_file,
            max_token_ttl=settings.access_token_ttl,
            activation_seconds=0 if args.activate_now else settings.key_activation_seconds,
        )
        _out(
            {
                "kid": key["kid"],
                "alg": key["alg"],
                "activates": key["activates"],
                "file": str(settings.keys_file),
            }
        )
        return 0
    return fail("unknown command", 2)  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
