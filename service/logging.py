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

import datetime
import json
import logging
import os
import re
import sys
import time
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from . import tracing
from .context import current_request, request_facts
from .logsink import batch_lines, sink
from .redaction import _SUSPECT, REDACTED, _secret_key, _suspect, redact_value

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


class _Second:
    """`ts` text up to the second, made once per second (the rest is microseconds)."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def ts(self) -> str:
        second, micro = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self.second:
            stamp = datetime.datetime.fromtimestamp(second, tz=datetime.UTC)
            self.prefix, self.second = stamp.strftime("%Y-%m-%dT%H:%M:%S."), second
        return f"{self.prefix}{micro:06d}Z"


_clock = _Second()
_pid = os.getpid()
_LEVELS = {"warn": "WARNING", "exception": "ERROR"}  # structlog's aliases


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


# Keys no line treats as secret, checked first (the rest go through `_secret_key`).
_PLAIN = frozenset(
    {"method", "path", "route", "status", "duration_ms", "client_ip", "principal", "pid"}
)
_NUMBERS = (int, float, bool)
_SKIP = frozenset(
    {"ts", "level", "event", "request_id", "trace_id", "_record", "_from_structlog", "logger_name"}
)
# Fields the one-pass JSON line leaves to `_shape` (given explicitly, or set at the end).
_OWN = frozenset({"ts", "level", "request_id", "trace_id", "logger", "_record"})


def _shape(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The one processor: a new dict in the line's order, with the request's ids, the
    level, the time and the process, secret-named fields and secret-looking values
    redacted. The text values are searched together first (no pattern holds a NUL, so
    no match spans two of them): most lines have nothing to redact."""
    event = event_dict.get("event")
    out: dict[str, Any] = {
        "ts": _clock.ts(),
        "level": _LEVELS.get(method) or method.upper(),
        "event": event,
    }
    texts = [event] if type(event) is str else []
    facts = current_request.get()
    if facts is not None:
        out["request_id"] = rid = event_dict.get("request_id", facts.request_id)
        out["trace_id"] = event_dict.get("trace_id", facts.trace_id)
    else:
        rid = event_dict.get("request_id")
        for key in ("request_id", "trace_id"):
            if key in event_dict:
                out[key] = event_dict[key]
    if type(rid) is str:  # the caller's X-Request-ID may look like a secret
        texts.append(rid)
    for key, value in event_dict.items():
        if key in _SKIP:
            continue
        kind = type(value)
        if key not in _PLAIN and _secret_key(key):
            value = REDACTED
        elif kind is str:
            texts.append(value)
        elif value is not None and kind not in _NUMBERS:
            value = redact_value(value, 1)
        out[key] = value
    if _suspect("\x00".join(texts)):
        for key, value in out.items():
            if type(value) is str and key != "ts" and key != "level":
                out[key] = redact_value(value)
    if "pid" not in out:
        out["pid"] = _pid
    name = event_dict.get("logger_name")
    if name is None and "_record" in event_dict:
        name = event_dict["_record"].name
    if name is not None:
        out["logger"] = name
    return out


def _exc_info(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog's `format_exc_info`, called only for a line that has an exception."""
    if "exc_info" not in event_dict:
        return event_dict
    return structlog.processors.format_exc_info(logger, method, event_dict)


def _fallback(value: Any) -> Any:
    return value.__structlog__() if hasattr(value, "__structlog__") else repr(value)


_json = json.JSONEncoder(ensure_ascii=False, default=_fallback).encode


def _render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    return _json(event_dict)


_text = json.encoder.encode_basestring  # json's own (C) string encoder
# '"key": ' per field name that is not secret (the names come from the code).
_JSON_KEYS: dict[str, str] = {}


def _json_line(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
    """`_render_json(_shape(...))` in one pass, for the lines nearly all lines are: only
    text, numbers and null, no secret-named field, nothing that looks like a secret.
    Anything else goes the two-step way (same output; tests/test_logging.py compares)."""
    event = event_dict.get("event")
    facts = current_request.get()
    if type(event) is not str or facts is None or not _OWN.isdisjoint(event_dict):
        return _json(_shape(logger, method, event_dict))
    rid = facts.request_id
    head = (
        f'{{"ts": "{_clock.ts()}", "level": "{_LEVELS.get(method) or method.upper()}", '
        f'"event": {_text(event)}, "request_id": {_text(rid)}, '
        f'"trace_id": "{facts.trace_id}"'  # 32 hex digits (context.RequestFacts)
    )
    parts = [head]
    texts = [event, rid]
    keys, plain, skip, text_of = _JSON_KEYS, _PLAIN, _SKIP, _text
    for key, value in event_dict.items():
        if key in skip:
            continue
        kind = type(value)
        if kind is str:
            texts.append(value)
            text = text_of(value)
        elif kind is int or (kind is float and value - value == 0):  # not nan or inf
            text = repr(value)
        elif value is None:
            text = "null"
        else:
            return _json(_shape(logger, method, event_dict))
        name = keys.get(key)
        if name is None:
            if key not in plain and _secret_key(key):
                return _json(_shape(logger, method, event_dict))
            name = f"{text_of(key)}: "
            if len(keys) < 1024:
                keys[key] = name
        parts.append(name + text)
    if "pid" not in event_dict:
        parts.append(f'"pid": {_pid}')
    name = event_dict.get("logger_name")
    if type(name) is not str or _suspect("\x00".join(texts)):
        return _json(_shape(logger, method, event_dict))
    parts.append(f'"logger": {_text(name)}')
    return ", ".join(parts) + "}"


def _lower_level(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict["level"] = str(event_dict["level"]).lower()  # the console's level colours
    return event_dict


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
