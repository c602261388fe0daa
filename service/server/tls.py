"""TLS key-exchange groups through OpenSSL's own configuration, not through Python.

OpenSSL reads its configuration file once per process, when it first initialises (the first
`hashlib` import already does), so the file must be named in the environment before the
serving process starts: `portcullis serve` sets `OPENSSL_CONF` before it spawns Hypercorn's
workers (and restarts itself with it when it serves in-process, `--workers 0`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import MutableMapping
from pathlib import Path

OPENSSL_CONF = Path(__file__).with_name("openssl.cnf")
VARIABLE = "OPENSSL_CONF"


def configured(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether `environ` (the process's) names this service's OpenSSL configuration."""
    return (os.environ if environ is None else environ).get(VARIABLE) == str(OPENSSL_CONF)


def configure(environ: MutableMapping[str, str] | None = None) -> None:
    """Name the configuration in `environ`, for the processes started from now on."""
    (os.environ if environ is None else environ)[VARIABLE] = str(OPENSSL_CONF)


def groups_configured() -> bool:
    """Whether OpenSSL in this process loaded the configuration (its marker option shows on
    a new context)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    return bool(context.options & ssl.OP_NO_RENEGOTIATION)
