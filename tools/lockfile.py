"""Tie the lock files to pyproject.toml: `stamp` records a digest of the dependency lists in
each lock's header, `check` fails when pyproject.toml has changed since (run `make lock`)."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-dev.lock")
MARKER = "# pyproject-digest: "


def dependency_digest(*, pyproject: Path) -> str:
    """A digest of what the lock is made from: requires-python and the dependency lists
    (order and spacing do not matter)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted("".join(d.split()) for d in project.get("dependencies", [])),
        "optional-dependencies": {
            extra: sorted("".join(d.split()) for d in deps)
            for extra, deps in project.get("optional-dependencies", {}).items()
        },
    }
    canonical = json.dumps(inputs, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def recorded_digest(*, lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(MARKER):
            return line.removeprefix(MARKER).strip()
    return None


def stamp(*, lock: Path, digest: str) -> None:
    """Write `digest` into the lock's header (after uv's own comment lines)."""
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(MARKER)]
    at = 0
    while at < len(lines) and lines[at].startswith("#"):
        at += 1
    lines.insert(at, MARKER + digest)
    lock.write_text("\n".join(lines) + "\n")


def stale_locks(*, root: Path) -> list[str]:
    """The lock files that are missing or were made from other dependency lists."""
    digest = dependency_digest(pyproject=root / "pyproject.toml")
    return [
        name
        for name in LOCKS
        if not (root / name).exists() or recorded_digest(lock=root / name) != digest
    ]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "stamp":
        digest = dependency_digest(pyproject=ROOT / "pyproject.toml")
        for name in LOCKS:
            stamp(lock=ROOT / name, digest=digest)
        return 0
    if command == "check":
        stale = stale_locks(root=ROOT)
        for name in stale:
            sys.stderr.write(
                f"{name} is stale: pyproject.toml's dependencies changed; run `make lock`\n"
            )
        return 1 if stale else 0
    sys.stderr.write("usage: python -m tools.lockfile stamp|check\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
