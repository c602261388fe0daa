"""Run panva's oauth4webapi (Node.js) as a DPoP client of a running Portcullis. Its npm
package is installed on first use from the committed lock file; without Node.js or the
npm registry the conformance tests skip and say why."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .npm import NODE, npm_ready

HERE = Path(__file__).parent / "dpop_client"


def unavailable() -> str | None:
    """Why the client cannot run here, or None once its package is installed."""
    return npm_ready(HERE, "oauth4webapi")


def run_client(
    issuer: str, ca: Path, *, username: str, password: str, client_id: str, client_secret: str
) -> dict[str, Any]:
    """Run the client script; what it saw, or AssertionError with its stderr."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(HERE / "client.mjs"), issuer, username, client_id],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NODE_EXTRA_CA_CERTS": str(ca),
            "USER_PASSWORD": password,
            "CLIENT_SECRET": client_secret,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
