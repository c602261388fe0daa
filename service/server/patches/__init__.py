"""Every change this service makes to Hypercorn's behaviour, installed by one `install()`.

Hypercorn is pinned exactly (`PINNED`, and `==` in pyproject.toml): each replaced or wrapped
upstream function is listed in `UPSTREAM` with the SHA-256 of the source it was written
against, and tests/server/test_patches.py compares those with the installed source, so an
upgrade fails the suite naming the function. At start-up `install()` refuses any other
installed Hypercorn with one line and exit status 2. Each defect and its upstream report:
docs/upstream.md.

- `h11`: an answer sent before the request body arrived says `Connection: close`.
- `h2`: the same early answer on HTTP/2 (no `KeyError` tearing the connection down), the
  rapid-reset bound, and the graceful `keep_alive_max_requests` GOAWAY.
- `lifecycle`: the drain before Hypercorn's graceful stop, and the master's exit status
  when a worker fails at start-up.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

from . import h2, h11, lifecycle
from .upstream import UPSTREAM, Replaced

__all__ = ["PINNED", "UPSTREAM", "Replaced", "install", "installed_version"]

PINNED = "0.18.0"


def installed_version() -> str:
    return version("hypercorn")


def install() -> None:
    """Apply every patch (idempotent), or stop the process: exit 2 with one line naming the
    installed Hypercorn when it is not the one these patches were written for."""
    installed = installed_version()
    if installed != PINNED:
        sys.stderr.write(
            f"portcullis: Hypercorn {installed} is installed, but the server patches "
            f"(service/server/patches) are written for Hypercorn {PINNED} exactly; "
            "install the locked set (requirements.lock)\n"
        )
        raise SystemExit(2)
    h11.install()
    h2.install()
    lifecycle.install()
