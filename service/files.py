"""Private files: the data directory holds password hashes, notes and signing keys, so
every folder the service creates is 0700 and every file 0600, whatever the umask.

The process umask is left alone (it would also change files the operator expects to be
readable, such as the dev CA certificate). SQLite creates `-wal` and `-shm` lazily,
copying the database file's mode, so the database file is created 0600 before SQLite
opens it. Existing installs are tightened at start-up by `tighten`, which reports what
it changed so the caller can log it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class Tightened:
    path: Path
    old_mode: int
    new_mode: int
    error: str | None = None  # set when the mode could not be changed


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents 0700; existing folders are not touched."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another worker created it first
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Create an empty file 0600 unless it exists (never truncates, follows no link)."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def tighten(paths: list[Path]) -> list[Tightened]:
    """Remove group and other access from each existing path (0700 folders, 0600 files)."""
    changed: list[Tightened] = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        wanted = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
        if not mode & 0o077:
            continue
        try:
            os.chmod(path, wanted)
        except OSError as exc:
            changed.append(Tightened(path, mode, mode, type(exc).__name__))
        else:
            changed.append(Tightened(path, mode, wanted))
    return changed
