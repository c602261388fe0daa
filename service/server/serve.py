"""`portcullis serve`: Hypercorn for `service.asgi:app`, secure by default, failing in one line.

- TLS unless asked otherwise: the settings come from `--config`, or `hypercorn.toml` in the
  working directory when it exists; without a certificate and key the command refuses to
  serve plain HTTP unless `--insecure` is given (and then says so at WARNING).
- Before any worker starts, the master checks the settings (one line per problem, naming
  the variable), the TLS files (naming the file) and every listening address (naming the
  address), and exits 2 on a problem, never with a traceback.
- It names the service's OpenSSL configuration (`tls`) for the workers, installs the server
  patches, and keeps a failed worker's exit status (`patches.lifecycle`).
"""

from __future__ import annotations

import argparse
import copy
import os
import ssl
import sys
from pathlib import Path
from typing import Any

from ..cli_support import fail, load_settings_or_exit
from . import tls

APP = "service.asgi:app"
DEFAULT_CONFIG = "hypercorn.toml"

_TLS_FILES = (
    ("certfile", "certificate", "--certfile"),
    ("keyfile", "private key", "--keyfile"),
    ("ca_certs", "client CA bundle", "--ca-certs"),
)

# Without a configuration file, log as hypercorn.toml does: one JSON renderer.
_LOGCONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        }
    },
    "loggers": {
        "hypercorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "hypercorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portcullis serve",
        description="Serve the API under Hypercorn, with TLS unless --insecure is given.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"Hypercorn settings (TOML); default: ./{DEFAULT_CONFIG} when it exists",
    )
    p.add_argument(
        "--bind", action="append", metavar="HOST:PORT", help="address to serve on (repeatable)"
    )
    p.add_argument(
        "--insecure-bind",
        action="append",
        metavar="HOST:PORT",
        help="plain-HTTP address that only redirects to https (repeatable)",
    )
    p.add_argument("--certfile", metavar="FILE", help="TLS certificate chain (PEM)")
    p.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM)")
    p.add_argument("--ca-certs", metavar="FILE", help="CA bundle for client certificates")
    p.add_argument(
        "--verify-mode",
        choices=["CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED"],
        help="client certificates (mutual TLS): CERT_REQUIRED refuses clients without one",
    )
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (0: in-process)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow serving plain HTTP without TLS (development only; logged at WARNING)",
    )
    return p


def _config(args: argparse.Namespace) -> Any:
    from hypercorn.config import Config

    path = args.config
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    if path is None:
        config = Config()
        config.logconfig_dict = copy.deepcopy(_LOGCONFIG)
    else:
        try:
            config = Config.from_toml(path)
        except OSError as exc:
            message = f"cannot read the server settings {path}: {exc.strerror}"
            raise SystemExit(fail(message, 2)) from None
        except ValueError as exc:  # tomllib.TOMLDecodeError
            raise SystemExit(fail(f"invalid server settings {path}: {exc}", 2)) from None
    for option in ("bind", "insecure_bind", "certfile", "keyfile", "ca_certs", "workers"):
        value = getattr(args, option)
        if value is not None:
            setattr(config, option, value)
    if args.verify_mode is not None:
        config.verify_mode = ssl.VerifyMode[args.verify_mode]
    config.application_path = APP
    return config


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
    if config.ssl_enabled:
        try:
            config.create_ssl_context()
        except (ssl.SSLError, ValueError) as exc:
            return (
                f"cannot load the TLS certificate {config.certfile} with the key "
                f"{config.keyfile}: {exc}"
            )
    return None


def address_problem(config: Any) -> str | None:
    """The first listening address that cannot be bound (in use, not local...), named."""
    for attribute in ("bind", "insecure_bind"):
        for address in getattr(config, attribute):
            probe = copy.copy(config)
            probe.bind, probe.insecure_bind, probe.quic_bind = [address], [], []
            try:
                sockets = probe.create_sockets()
            except OSError as exc:
                return f"cannot listen on {address}: {exc.strerror or exc}"
            for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
                sock.close()
    return None


def issuer_for(config: Any) -> str | None:
    """`https://localhost:PORT` for the first TLS bind on a loopback or wildcard address,
    `https://HOST:PORT` for any other (no port when it is 443); None without TLS."""
    if not config.ssl_enabled or not config.bind:
        return None
    host, _, port = str(config.bind[0]).rpartition(":")
    host = host.strip("[]")
    if host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost", ""):  # noqa: S104
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"https://{host}" + ("" if port == "443" else f":{port}")


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = load_settings_or_exit()
    config = _config(args)
    if not config.ssl_enabled:
        if not args.insecure:
            return fail(
                "refusing to serve without TLS: give --certfile and --keyfile (or a --config "
                f"with both; ./{DEFAULT_CONFIG} is used when present), or --insecure for "
                "plain HTTP",
                2,
            )
    problem = tls_problem(config) or address_problem(config)
    if problem is not None:
        return fail(problem, 2)
    if settings.env == "development" and "issuer" not in settings.model_fields_set:
        # Tokens' `iss` and the redirect follow the port served on (the workers, spawned
        # from here, inherit it); production refuses to start without an issuer.
        derived = issuer_for(config)
        if derived is not None:
            os.environ["PORTCULLIS_ISSUER"] = derived

    from .patches import install
    from .patches.lifecycle import exit_status

    install()
    if not tls.configured():
        tls.configure()  # inherited by the workers, spawned from here on
        if config.workers == 0:  # serving in this process, whose OpenSSL has started
            os.execv(sys.executable, [sys.executable, "-m", "service", "serve", *argv])  # noqa: S606
    if not config.ssl_enabled:
        from ..logging import configure_logging, get_logger

        configure_logging(settings.log_level)
        get_logger("portcullis.serve").warning(
            "server.insecure", bind=list(config.bind), reason="serving plain HTTP (--insecure)"
        )
    import hypercorn.run

    try:
        code = hypercorn.run.run(config)
    except OSError as exc:  # an address taken between the check and the start
        return fail(f"cannot listen: {exc.strerror or exc}", 2)
    return exit_status(code)
