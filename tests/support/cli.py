"""Run the service's command line as an operator would: a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    data_dir: Path, *args: str, stdin: str = "", cwd: Path | str = ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m service ARGS` in `cwd` (where it reads `.env`)."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(data_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin,
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
