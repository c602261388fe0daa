"""The process group of one server: Hypercorn spawns each worker as a child of one
master, so workers share folders named after the master's pid (`<data_dir>/run/<pid>/`,
`<data_dir>/metrics/<pid>/`, all 0700); folders of masters that are gone are removed."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from pathlib import Path

from .files import make_private_dirs


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_folder(base: Path) -> Path:
    """`base/<master pid>/`, created; siblings of dead masters are deleted."""
    parent = multiprocessing.parent_process()
    group = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    make_private_dirs(base)
    for old in base.iterdir():
        if old.is_dir() and old.name.isdigit() and int(old.name) != group:
            if not process_alive(int(old.name)):
                shutil.rmtree(old, ignore_errors=True)
    folder = base / str(group)
    make_private_dirs(folder)
    return folder


def register_worker(data_dir: Path) -> Path:
    folder = group_folder(data_dir / "run")
    (folder / str(os.getpid())).touch()
    return folder


def live_workers(folder: Path) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if entry.name.isdigit() and process_alive(int(entry.name)):
                count += 1
    return count


def unregister_worker(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / str(os.getpid())).unlink()
