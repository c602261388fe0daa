"""Structured logging: one renderer for every line, secrets redacted.

Every line — the service's own events, the access line (`access_line`), and the
standard library's records (Hypercorn, SQLAlchemy, ...) — goes through one structlog
processor chain (`_shape`, then the renderer) into one sink on stdout. The renderer is
JSON, one object per line: `ts` (RFC 3339 UTC), `level`, `event`, then `request_id` and
`trace_id` inside a request, the event's fields, `pid`, `logger`. JSON escapes control
characters, so a value can never forge a second line. `PORTCULLIS_LOG_FORMAT=console`
renders the same fields through structlog's ConsoleRenderer instead, for people.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog
from structlog.typing import FilteringBoundLogger, Processor

from . import tracing
from .context import request_facts
from .logrender import _exc_info, _json_line, _lower_level, _shape
from .logrender import _render_json as _render_json  # the two-step path, for the tests
from .logsink import batch_lines, sink
from .redaction import _SUSPECT, REDACTED, _suspect, redact_value

LogFormat = Literal["json", "console"]
__all__ = [
    "REDACTED",
    "_SUSPECT",
    "_suspect",
    "access_line",
    "batch_lines",
    "get_logger",
    "redact_value",
]


class _LineLogger:
    """structlog's wrapped logger: hands each rendered line to the sink."""

    def msg(self, line: str) -> None:
        sink.write(line + "\n")

    debug = info = warning = warn = error = critical = fatal = exception = log = msg


# The one chain, replaced in place by `configure_logging` (so loggers made before see it).
_PROCESSORS: list[Processor] = [_exc_info, _json_line]


class LineFormatter(structlog.stdlib.ProcessorFormatter):
    """A `logging.Formatter` rendering any record through the one chain (hypercorn.toml's
    log configuration names it, as `JsonFormatter`)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        super().__init__(processors=_PROCESSORS, foreign_pre_chain=[structlog.stdlib.ExtraAdder()])


JsonFormatter = LineFormatter


class _Handler(logging.Handler):
    """The standard library's records, rendered by the one chain into the one sink."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def choose_format(chosen: LogFormat | None, env: str, stream: Any = None) -> LogFormat:
    """JSON in production and wherever nobody reads along; console when asked for, or by
    default in development on a terminal."""
    if env == "production":
        return "json"
    if chosen is not None:
        return chosen
    isatty = getattr(stream or sys.stdout, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def configure_logging(level: str = "INFO", stream: Any = None, fmt: LogFormat = "json") -> None:
    """Route structlog and the standard library through the one chain into the sink."""
    sink.flush()  # what was written so far goes where it was meant to
    sink.stream = stream
    tail: list[Processor] = [_exc_info, _shape]
    if fmt == "console":
        isatty = getattr(stream or sys.stdout, "isatty", None)
        colors = bool(callable(isatty) and isatty())
        tail += [_lower_level, structlog.dev.ConsoleRenderer(colors=colors, timestamp_key="ts")]
    else:
        tail = [_exc_info, _json_line]
    _PROCESSORS[:] = tail
    handler = _Handler()
    handler.setFormatter(LineFormatter())
    handler._portcullis = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_portcullis", False):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("hypercorn.error", "hypercorn.access"):
        hlog = logging.getLogger(name)
        hlog.handlers = []
        hlog.propagate = True
        if name == "hypercorn.error":
            hlog.filters = [_docs_link]
    wrapper = structlog.make_filtering_bound_logger(logging.getLevelName(level))
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=lambda *_args: _LineLogger(),
        wrapper_class=wrapper,
        cache_logger_on_first_use=False,
    )
    _access.enabled = logging.getLevelName(level) <= logging.INFO


_RUNNING = re.compile(r"Running on (https://\S+)")


def _docs_link(record: logging.LogRecord) -> bool:
    """Hypercorn's "Running on https://HOST:PORT" line also says where the docs are."""
    if record.msg and isinstance(record.msg, str) and record.msg.startswith("Running on"):
        found = _RUNNING.match(record.getMessage())
        if found:
            record.docs = found.group(1) + "/docs"
    return True


class _Access:
    enabled = True  # INFO lines are written


_access = _Access()


def access_line(
    *,
    method: str,
    path: str,
    route: str | None,
    status: int,
    seconds: float,
    client_ip: str,
    principal: str | None,
) -> None:
    """The `http.request` line (its request and trace ids come from the request's facts),
    through the one chain like every line; called on the chain directly, without a bound
    logger around it, since it is the line every request writes."""
    if not _access.enabled:
        return
    line: Any = {
        "event": "http.request",
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client_ip": client_ip,
        "principal": principal,
        "logger_name": "portcullis.access",
    }
    for processor in _PROCESSORS:
        line = processor(None, "info", line)
    sink.write(line + "\n")


def get_logger(name: str = "portcullis") -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger


def security_event(event: str, *, level: int = logging.WARNING, reason: str, **fields: Any) -> None:
    """Log a security event with the request's client IP, and the principal when the
    caller knows it."""
    facts = request_facts()
    payload: dict[str, Any] = {"reason": reason}
    if facts is not None:
        payload["client_ip"] = facts.client_ip
    if fields.get("principal", 0) is None:
        del fields["principal"]
    payload.update(fields)
    get_logger("portcullis.security").log(level, event, **payload)
    tracing.event(event, reason)  # on the request's span, when tracing is on
