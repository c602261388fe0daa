"""`portcullis serve`: Hypercorn's command line for `service.asgi:app`, failing loudly.

Plain `hypercorn ... service.asgi:app` exits 0 when every worker dies at start-up (Hypercorn
0.17 and 0.18 overwrite the failed worker's exit status: pgjones/hypercorn#269, fix proposed in
pgjones/hypercorn#372), and a missing certificate surfaces in each worker as a
`FileNotFoundError` that names no file. So, in the master process and before any worker
starts, this checks the settings (one line per problem, naming the variable) and loads the TLS
files (naming the file), exiting 2 on a problem; and it keeps a failed worker's exit status.
This module is the one place that works around those Hypercorn shortcomings.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from .cli_support import fail, load_settings_or_exit

APP = "service.asgi:app"

_TLS_FILES = (
    ("certfile", "certificate", "--certfile"),
    ("keyfile", "private key", "--keyfile"),
    ("ca_certs", "client CA bundle", "--ca-certs"),
)


def tls_problem(config: Any) -> str | None:
    """Why Hypercorn could not load `config`'s TLS files, naming the file; None when it can."""
    for attribute, what, option in _TLS_FILES:
        path = getattr(config, attribute, None)
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return f"cannot read the TLS {what} {path} (Hypercorn {attribute}, {option}): {reason}"
    if getattr(config, "ssl_enabled", False):
        try:
            config.create_ssl_context()
        except (ssl.SSLError, ValueError) as exc:
            return (
                f"cannot load the TLS certificate {config.certfile} with the key "
                f"{config.keyfile}: {exc}"
            )
    return None


def _recording(join: Callable[[list[Any]], int], failures: list[int]) -> Callable[..., int]:
    def joined(processes: list[Any]) -> int:
        code = join(processes)
        if code != 0:
            failures.append(code)
        return code

    return joined


def main(argv: list[str]) -> int:
    """Run Hypercorn's CLI with `argv` (Hypercorn's options) for this service's app."""
    import hypercorn.__main__ as hypercorn_cli
    import hypercorn.run as hypercorn_run

    run = hypercorn_run.run
    failures: list[int] = []
    hypercorn_run._join_exited = _recording(hypercorn_run._join_exited, failures)

    def checked_run(config: Any) -> int:  # after Hypercorn parsed its options
        load_settings_or_exit()
        problem = tls_problem(config)
        if problem is not None:
            return fail(problem, 2)
        code = run(config) or (failures[0] if failures else 0)
        return 128 - code if code < 0 else code  # a worker killed by signal N: 128 + N

    hypercorn_cli.run = checked_run  # type: ignore[attr-defined]
    return int(hypercorn_cli.main([*argv, APP]))
