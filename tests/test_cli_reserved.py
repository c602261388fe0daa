"""create-user refuses reserved usernames as registration does."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PASSWORD
from tests.support.cli import run_cli


def test_create_user_refuses_reserved_names(tmp_path: Path) -> None:
    for name in ("admin", "root", "portcullis", "c_robot"):
        r = run_cli(tmp_path, "create-user", name, "--password-stdin", stdin=PASSWORD + "\n")
        assert r.returncode != 0 and r.stdout == "", (name, r.stdout)
        assert "Traceback" not in r.stderr and PASSWORD not in r.stderr
        assert "username: this username is reserved" in r.stderr, r.stderr  # names the fault
    r = run_cli(
        tmp_path,
        "create-user",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert r.returncode != 0
    weak = run_cli(tmp_path, "create-user", "operator2", "--password-stdin", stdin="abcdabcdabcd\n")
    assert weak.returncode != 0 and "password" in weak.stderr and "abcdabcd" not in weak.stderr
    ok = run_cli(tmp_path, "create-user", "operator1", "--password-stdin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
