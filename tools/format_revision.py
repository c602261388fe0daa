"""Alembic's post-write hook: `ruff check --fix` and `ruff format` on a new revision
when ruff is installed (the dev tools), otherwise a one-line note, and the revision is
kept as written. `make run`'s environment has no ruff, and a revision must not fail
there for want of a formatter."""

from __future__ import annotations

import subprocess
import sys


def _ruff(*args: str) -> bool:
    done = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-m", "ruff", *args], capture_output=True, check=False
    )
    return done.returncode == 0


def main(paths: list[str]) -> int:
    if not _ruff("--version"):
        sys.stderr.write(
            "note: ruff is not installed (`make .venv/.dev-installed` installs it); "
            "the revision is left as written\n"
        )
        return 0
    _ruff("check", "--fix", "--quiet", *paths)
    _ruff("format", "--quiet", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
