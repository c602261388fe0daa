"""The data directory at start-up: created 0700, and an older install's folders and
files (database, WAL, SHM, keys, worker and metrics folders) tightened and logged."""

from __future__ import annotations

from .config import Settings
from .files import make_private_dirs, tighten
from .logging import get_logger
from .store.db import sqlite_files

log = get_logger("portcullis.files")


def secure_data_dir(settings: Settings) -> None:
    """Create the data directory 0700; tighten an older install's folders and files
    (0700 / 0600) and say so."""
    make_private_dirs(settings.data_dir)
    data = settings.data_dir
    paths = [data, data / "keys", data / "run", data / "metrics", settings.keys_file]
    for item in tighten([*paths, *sqlite_files(settings.database_dsn)]):
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
