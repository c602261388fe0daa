"""Constructing the service's objects touches nothing outside memory: the file and
database work is done by an explicit `open()` (`Services.start` runs it).

Run in a data folder that does not exist, with the key file and the database inside it:
after construction (of the parts, of `Services`, of the whole app) the folder is still
absent; after `open()` it is there, private, with both files."""

from __future__ import annotations

import os
from pathlib import Path

from service import create_app
from service.config import Settings
from service.metrics import Metrics
from service.security.keys import KeyManager
from service.services import Services
from service.store.db import Database


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None)


def test_constructing_touches_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "data"
    settings = _settings(missing)
    Database(settings.database_dsn)
    KeyManager(settings.keys_file)
    Services(settings, Metrics())
    assert not missing.exists() and _tree(tmp_path) == []


def test_creating_the_app_touches_no_file(tmp_path: Path) -> None:
    """`create_app` builds; the data folder is made (and an older one tightened) by
    `Services.open` at start-up."""
    missing = tmp_path / "absent" / "data"
    create_app(_settings(missing))
    assert not missing.exists() and _tree(tmp_path) == []


def test_constructing_in_an_unwritable_folder_changes_nothing(tmp_path: Path) -> None:
    """A folder that refuses writes: construction neither fails nor writes (root ignores
    the mode, so the listing before and after is what is compared)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "marker").write_text("x")
    os.chmod(folder, 0o500)
    try:
        Services(_settings(folder), Metrics())
        assert _tree(folder) == ["marker"]
    finally:
        os.chmod(folder, 0o700)


async def test_open_does_the_file_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = Services(_settings(data), Metrics())
    try:
        await svc.open()
        assert data.stat().st_mode & 0o777 == 0o700
        assert svc.settings.keys_file.stat().st_mode & 0o777 == 0o600
        database = data / "portcullis.db"
        assert database.stat().st_mode & 0o777 == 0o600
        assert svc.keys.ring.current_kid  # loaded
    finally:
        await svc.db.close()
        svc.passwords.close()


async def test_a_database_opens_itself_on_first_use(tmp_path: Path) -> None:
    """The CLI and tests that use a `Database` without `open()` still get the file made
    private and in WAL mode (the first `begin`/`read` opens it)."""
    path = tmp_path / "d" / "x.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert not path.parent.exists()
    try:
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal" and path.stat().st_mode & 0o777 == 0o600
    finally:
        await db.close()
