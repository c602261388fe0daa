"""Private files: the data directory, the SQLite database with its WAL and SHM files
and the signing keys are readable by the service user only, new or inherited."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service import create_app
from service.files import create_private_file, make_private_dirs, tighten
from tests.conftest import client_for, user_token


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


async def test_new_install_is_private_whatever_the_umask(settings_factory: Any) -> None:
    settings = settings_factory()
    data: Path = settings.data_dir
    with umask(0o000):  # the most permissive umask an operator could run with
        app = create_app(settings)
        async with app.test_app(), client_for(app) as c:
            token = await user_token(c, "private")
            r = await c.post(
                "/v1/notes", json={"title": "t"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 201
            db = data / "portcullis.db"
            wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
            assert wal.exists() and shm.exists()  # created lazily by SQLite, after start-up
            for path in (db, wal, shm, settings.keys_file):
                assert mode(path) == 0o600, (path, oct(mode(path)))
            for folder in (data, data / "keys", data / "run"):
                assert mode(folder) == 0o700, (folder, oct(mode(folder)))
            for entry in data.rglob("*"):  # nothing anywhere for group or others
                if entry.is_dir():
                    assert not mode(entry) & 0o077, entry


async def test_older_install_is_tightened_and_logged(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory()
    data: Path = settings.data_dir
    db = data / "portcullis.db"
    with umask(0o022):  # what 0.1 left behind: 0755 folders, 0644 files
        data.mkdir(parents=True)
        (data / "keys").mkdir()
        older = create_app(settings)  # creates the key file; then loosen everything
        async with older.test_app():
            pass
        holder = sqlite3.connect(db)  # keeps -wal and -shm in place, as a live server does
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
        holder.commit()
    try:
        loose = [data, data / "keys", db, Path(f"{db}-wal"), Path(f"{db}-shm"), settings.keys_file]
        for path in loose:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        capsys.readouterr()
        app = create_app(settings)
        async with app.test_app(), client_for(app) as c:  # start-up tightens (Services.open)
            for path in loose:
                assert mode(path) == (0o700 if path.is_dir() else 0o600), path
            out = capsys.readouterr().out
            records = [json.loads(x) for x in out.splitlines() if x[:1] == "{"]
            logged = {
                r["file"]: (r["old_mode"], r["new_mode"], r["level"])
                for r in records
                if r["event"] == "files.permissions_tightened"
            }
            for path in loose:
                old = "0o755" if path.is_dir() else "0o644"
                new = "0o700" if path.is_dir() else "0o600"
                assert logged[str(path)] == (old, new, "WARNING"), logged
            await user_token(c, "still-works")
        capsys.readouterr()
        again = create_app(settings)
        async with again.test_app():  # nothing left to tighten: nothing logged
            pass
        assert "files.permissions_tightened" not in capsys.readouterr().out
    finally:
        holder.close()


def test_helpers_create_private_and_never_loosen(tmp_path: Path) -> None:
    with umask(0o000):
        make_private_dirs(tmp_path / "a" / "b" / "c")
        create_private_file(tmp_path / "d" / "file.db")
    for folder in ("a", "a/b", "a/b/c", "d"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert mode(tmp_path / "d" / "file.db") == 0o600
    (tmp_path / "d" / "file.db").write_text("kept")
    create_private_file(tmp_path / "d" / "file.db")  # an existing file is not truncated
    assert (tmp_path / "d" / "file.db").read_text() == "kept"
    strict = tmp_path / "strict"
    strict.write_text("")
    os.chmod(strict, 0o400)
    assert tighten([strict, tmp_path / "missing"]) == []
    assert mode(strict) == 0o400
