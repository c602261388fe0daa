"""Install a test helper's npm packages from its committed lock file, once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE, NPM = shutil.which("node"), shutil.which("npm")


def npm_ready(folder: Path, package: str) -> str | None:
    """Why `package` cannot run from `folder`, or None once `npm ci` has installed it."""
    if NODE is None or NPM is None:
        return f"Node.js/npm are not installed (needed to run {package})"
    if not (folder / "node_modules" / package).is_dir():
        done = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return f"npm ci of {package} failed: {done.stderr.strip()[-300:]}"
    return None
