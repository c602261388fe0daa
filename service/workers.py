"""Which worker processes of this server are alive (Hypercorn spawns each worker as a
child of one master; they share `<data_dir>/run/<master pid>/`)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register_worker(data_dir: Path) -> Path:
    parent = multiprocessing.parent_process()
    group = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    base = data_dir / "run"
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name.isdigit() and int(old.name) != group and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    folder = base / str(group)
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()
    return folder


def live_workers(folder: Path) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if entry.name.isdigit() and _alive(int(entry.name)):
                count += 1
    return count


def unregister_worker(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / str(os.getpid())).unlink()
