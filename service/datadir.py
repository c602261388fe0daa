"""The data directory at start-up: created 0700, and an older install's folders and
files (database, WAL, SHM, keys, worker and metrics folders) tightened and logged.

`Services.open` runs `secure_data_dir` off the event loop, before the key file and the
database are opened, then logs what it changed (`log_tightened`) on the loop."""

from __future__ import annotations

from .config import Settings
from .files import Tightened, make_private_dirs, tighten
from .logging import get_logger
from .store.db import sqlite_files

log = get_logger("portcullis.files")


def secure_data_dir(settings: Settings) -> list[Tightened]:
    """Create the data directory 0700; tighten an older install's folders and files
    (0700 / 0600). Returns what it changed or could not change (blocking file work)."""
    make_private_dirs(settings.data_dir)
    data = settings.data_dir
    paths = [data, data / "keys", data / "run", data / "metrics", settings.keys_file]
    return tighten([*paths, *sqlite_files(settings.database_dsn)])


def log_tightened(changes: list[Tightened]) -> None:
    """Say what `secure_data_dir` tightened, and what it could not."""
    for item in changes:
        if item.error is None:
            log.warning(
                "files.permissions_tightened",
                file=str(item.path),
                old_mode=oct(item.old_mode),
                new_mode=oct(item.new_mode),
            )
        else:
            log.error(
                "files.permissions_loose",
                file=str(item.path),
                mode=oct(item.old_mode),
                reason=item.error,
            )
