"""The operator commands, run as an operator would (a fresh process each), against the
database a running instance serves: set-password, users, clients, keys list."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from service import create_app
from service.config import Settings
from tests.conftest import PASSWORD, bearer, client_for, svc_of
from tests.support.cli import ROOT, run_cli

NEW = "an operator's new passphrase 7"


async def cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, tmp_path, *args, stdin=stdin)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Quart, httpx.AsyncClient]]:
    """An instance serving the database the commands change."""
    first = await cli(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    app = create_app(Settings(_env_file=None, data_dir=tmp_path, rate_limit_token="1000/minute"))
    async with app.test_app(), client_for(app) as client:
        yield app, client


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def create_user(tmp_path: Path, name: str, role: str = "user") -> str:
    r = await cli(tmp_path, "create-user", name, "--role", role, "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["id"])


async def test_set_password_revokes_the_users_sessions(
    tmp_path: Path, served: tuple[Quart, httpx.AsyncClient]
) -> None:
    app, client = served
    await create_user(tmp_path, "alice")
    tokens = (await login(client, "alice", PASSWORD)).json()
    assert (
        await client.get("/v1/notes", headers=bearer(tokens["access_token"]))
    ).status_code == 200

    weak = await cli(tmp_path, "set-password", "alice", "--password-stdin", stdin="password1234\n")
    assert weak.returncode != 0 and "common" in weak.stderr
    assert "password1234" not in weak.stdout + weak.stderr and "Traceback" not in weak.stderr
    unknown = await cli(tmp_path, "set-password", "nobody", "--password-stdin", stdin=NEW + "\n")
    assert unknown.returncode != 0 and "nobody" in unknown.stderr
    no_tty = await cli(tmp_path, "set-password", "alice", stdin=NEW + "\n")  # stdin is a pipe
    assert no_tty.returncode != 0 and "--password-stdin" in no_tty.stderr
    assert (await login(client, "alice", PASSWORD)).status_code == 200  # nothing changed

    r = await cli(tmp_path, "set-password", "alice", "--password-stdin", stdin=NEW + "\n")
    assert r.returncode == 0, r.stderr
    assert NEW not in r.stdout + r.stderr
    await svc_of(app).bus.poll()  # the running instance's next poll
    assert (
        await client.get("/v1/notes", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    again = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert again.json()["error"] == "invalid_grant"
    assert (await login(client, "alice", PASSWORD)).status_code == 400
    assert (await login(client, "alice", NEW)).status_code == 200


def _on_a_terminal(tmp_path: Path, *args: str, answers: list[str]) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as its controlling terminal and stdio,
    answering each prompt in turn; its exit status and everything it wrote."""
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORTCULLIS_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal,  # the controlling terminal getpass opens
    )
    os.close(slave)
    output = b""
    pending, answered = list(answers), 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1.0)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        output += chunk
        # Answer a prompt once it is shown (getpass turns echo off, flushing any input
        # typed before, and only then writes the prompt), never ahead of it.
        if pending and output[answered:].rstrip(b" ").endswith(b":"):
            os.write(master, pending.pop(0).encode() + b"\n")
            answered = len(output)
    else:
        proc.kill()
    os.close(master)
    return proc.wait(timeout=60), output.decode(errors="replace")


async def test_set_password_prompts_on_a_terminal_and_tables_are_the_default(
    tmp_path: Path, served: tuple[Quart, httpx.AsyncClient]
) -> None:
    _app, client = served
    await create_user(tmp_path, "bob")
    status, output = await asyncio.to_thread(
        _on_a_terminal, tmp_path, "set-password", "bob", answers=[NEW, NEW]
    )
    assert status == 0, output
    assert "New password:" in output and NEW not in output  # the prompt does not echo
    assert (await login(client, "bob", NEW)).status_code == 200
    status, output = await asyncio.to_thread(
        _on_a_terminal, tmp_path, "set-password", "bob", answers=[PASSWORD, PASSWORD + "x"]
    )
    assert status != 0 and "differ" in output
    assert (await login(client, "bob", NEW)).status_code == 200
    status, output = await asyncio.to_thread(_on_a_terminal, tmp_path, "users", "list", answers=[])
    header, rule, row = output.splitlines()[:3]
    assert header.split() == ["id", "username", "role", "disabled", "created"]
    assert set(rule.replace(" ", "")) == {"-"} and "bob" in row.split()


async def test_users_list_and_the_last_admin(
    tmp_path: Path, served: tuple[Quart, httpx.AsyncClient]
) -> None:
    _app, client = served
    root_id = await create_user(tmp_path, "root2", "admin")
    await create_user(tmp_path, "carol")
    r = await cli(tmp_path, "users", "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [(u["username"], u["role"]) for u in listed] == [("carol", "user"), ("root2", "admin")]
    assert "argon2" not in r.stdout
    for args in (("users", "disable", "root2"), ("users", "set-role", "root2", "user")):
        refused = await cli(tmp_path, *args)
        assert refused.returncode != 0 and "no enabled administrator" in refused.stderr, args
    assert (await login(client, "root2", PASSWORD)).status_code == 200
    admin = bearer((await login(client, "root2", PASSWORD)).json()["access_token"])
    api = await client.patch(f"/v1/admin/users/{root_id}", json={"disabled": True}, headers=admin)
    assert api.status_code == 409
    promoted = await cli(tmp_path, "users", "set-role", "carol", "admin")
    assert promoted.returncode == 0, promoted.stderr
    stepped_down = await cli(tmp_path, "users", "disable", "root2")
    assert stepped_down.returncode == 0, stepped_down.stderr
    assert (await login(client, "root2", PASSWORD)).status_code == 400
    missing = await cli(tmp_path, "users", "disable", "nobody")
    assert missing.returncode != 0 and "nobody" in missing.stderr


async def test_clients_list_disable_and_rotate(
    tmp_path: Path, served: tuple[Quart, httpx.AsyncClient]
) -> None:
    app, client = served
    r = await cli(tmp_path, "create-client", "etl", "--scope", "notes:read")
    created: dict[str, Any] = json.loads(r.stdout)
    cid = created["client_id"]

    async def grant(secret: str) -> httpx.Response:
        return await client.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )

    listed = await cli(tmp_path, "clients", "list", "--json")
    assert json.loads(listed.stdout) == [
        {
            "client_id": cid,
            "name": "etl",
            "scopes": "notes:read",
            "disabled": False,
            "created": json.loads(listed.stdout)[0]["created"],
        }
    ]
    assert created["client_secret"] not in listed.stdout
    table = await cli(tmp_path, "clients", "list")
    assert table.stdout.split()[:5] == ["client_id", "name", "scopes", "disabled", "created"]

    rotated = await cli(tmp_path, "clients", "rotate-secret", cid)
    assert rotated.returncode == 0, rotated.stderr
    secret = json.loads(rotated.stdout)["client_secret"]
    await svc_of(app).bus.poll()
    assert (await grant(created["client_secret"])).json()["error"] == "invalid_client"
    token = (await grant(secret)).json()["access_token"]
    assert (await client.get("/v1/notes", headers=bearer(token))).status_code == 200

    disabled = await cli(tmp_path, "clients", "disable", cid)
    assert disabled.returncode == 0 and json.loads(disabled.stdout)["disabled"] is True
    await svc_of(app).bus.poll()
    assert (await client.get("/v1/notes", headers=bearer(token))).status_code == 401
    assert (await grant(secret)).json()["error"] == "invalid_client"
    for args in (("clients", "disable", "c_nope"), ("clients", "rotate-secret", "c_nope")):
        r = await cli(tmp_path, *args)
        assert r.returncode != 0 and "c_nope" in r.stderr and "Traceback" not in r.stderr


async def test_keys_list_shows_ids_and_dates_never_a_private_member(tmp_path: Path) -> None:
    assert (await cli(tmp_path, "keys", "rotate")).returncode == 0
    assert (await cli(tmp_path, "keys", "rotate", "--activate-now")).returncode == 0
    r = await cli(tmp_path, "keys", "list", "--json")
    assert r.returncode == 0, r.stderr
    keys = json.loads(r.stdout)
    on_file = json.loads((tmp_path / "keys" / "jwks.json").read_text())["keys"]
    assert [k["kid"] for k in keys] == [k["kid"] for k in on_file]
    assert all(set(k) == {"kid", "alg", "created", "activates", "retired"} for k in keys)
    assert keys[0]["retired"] is not None and keys[-1]["retired"] is None
    for key in on_file:
        assert key["d"] not in r.stdout
    table = await cli(tmp_path, "keys", "list")
    assert table.stdout.split()[:5] == ["kid", "alg", "created", "activates", "retired"]
    empty = await cli(tmp_path / "none", "keys", "list")
    assert empty.returncode != 0 and "PORTCULLIS_SIGNING_KEYS_FILE" in empty.stderr
