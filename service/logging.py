"""Structured JSON logging: one object per line on stdout, secrets redacted.

structlog renders both its own events and the standard library's records (Hypercorn,
SQLAlchemy, ...) through the same processor chain, so every line has the same shape:
`ts` (RFC 3339 UTC), `level`, `event`, and `request_id` inside a request. JSON
encoding escapes control characters, so a value can never forge a second line.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from . import tracing
from .context import request_info

if TYPE_CHECKING:
    from .context import RequestInfo

REDACTED = "[REDACTED]"
_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|credential|private|"
    r"assertion|signature",
    re.IGNORECASE,
)
# Values that look like secrets wherever they appear: JWTs, bearer/basic credentials,
# passwords inside URLs.
_SECRET_VALUES = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]*@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)((?:password|client_secret|refresh_token|token)=)[^&\s]*"), r"\1" + REDACTED),
)
# Cheap pre-check: a value none of the patterns could match is left alone.
_SUSPECT = re.compile(r"(?i)eyJ|bearer|basic|://|=")


def _suspect(value: str) -> bool:
    """`_SUSPECT.search(value)`, as substring tests when the text is ASCII (where
    ignoring case is lowering it): a fifth of the regular expression's time."""
    if value.isascii():
        low = value.lower()
        return "eyj" in low or "bearer" in low or "basic" in low or "://" in low or "=" in low
    return _SUSPECT.search(value) is not None


_SAFE_KEYS = frozenset({"event", "reason", "token_type_hint", "grant_type"})


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return key not in _SAFE_KEYS and _SECRET_KEYS.search(key) is not None


def redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        if not _suspect(value):
            return value
        for pattern, replacement in _SECRET_VALUES:
            value = pattern.sub(replacement, value)
        return value
    if depth > 6:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and _secret_key(key)
                else redact_value(item, depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, depth + 1) for item in value]
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: hide secret-named fields and secret-looking values."""
    return redact_value(event_dict)  # type: ignore[no-any-return]


def add_pid(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("pid", os.getpid())  # which worker process wrote the line
    return event_dict


def add_request_id(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    info = request_info()
    if info is not None:
        event_dict.setdefault("request_id", info.request_id)
    return event_dict


def _level_upper(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    event_dict["level"] = str(event_dict.get("level", "info")).upper()
    return event_dict


def _stdlib_message(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict.setdefault("logger", record.name)
    return event_dict


_shared: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    add_request_id,
    add_pid,
]


_FIRST = ("ts", "level", "event", "request_id")


def _order(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    ordered = {key: event_dict.pop(key) for key in _FIRST if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _final(pre: list[Processor]) -> list[Processor]:
    return [
        *pre,
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        _level_upper,
        structlog.processors.format_exc_info,
        redact,
        _order,
        structlog.processors.JSONRenderer(ensure_ascii=False, sort_keys=False),
    ]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """`logging.Formatter` that renders any record as one JSON line (for Hypercorn)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        super().__init__(
            processors=_final([_stdlib_message]),
            foreign_pre_chain=[*_shared, structlog.stdlib.ExtraAdder()],
        )


class _Stdout:
    """A file whose writes go to whatever `sys.stdout` is now (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and the standard library through one JSON handler on stdout."""
    handler = logging.StreamHandler(stream or _Stdout())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_portcullis", False):
            root.removeHandler(existing)
    _access.flush()  # what was written so far goes where it was meant to
    _access.stream = stream
    _access.enabled = _min_level(level) <= logging.INFO
    handler._portcullis = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("hypercorn.error", "hypercorn.access"):
        hlog = logging.getLogger(name)
        hlog.handlers = []
        hlog.propagate = True
    # The service's own events skip the standard library: structlog renders them
    # straight to stdout (a third of the cost per line); foreign records (Hypercorn,
    # SQLAlchemy...) go through the handler above with the same processors.
    structlog.configure(
        processors=[*_shared, *_final([])[1:]],
        logger_factory=structlog.WriteLoggerFactory(file=stream or _Stdout()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=False,
    )


def _min_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO


class _AccessSink:
    """Where the access line goes: the stream `configure_logging` was given (else
    whatever `sys.stdout` is now), and whether INFO lines are written at all.

    In a serving worker (`batch_access_lines`), the lines of one event-loop iteration
    are written and flushed together by a callback the loop runs next: one system call
    per iteration instead of one per request, each line out within an iteration of its
    request's end. Elsewhere (the CLI, tests, embedding) a line is written at once."""

    __slots__ = ("batch", "enabled", "pending", "stream")

    def __init__(self) -> None:
        self.enabled = True
        self.stream: Any = None
        self.batch = False
        self.pending: list[str] = []

    def write(self, line: str) -> None:
        if self.batch:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self.pending.append(line)
                if len(self.pending) == 1:
                    loop.call_soon(self.flush)
                return
        self.pending.append(line)
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        text = self.pending[0] if len(self.pending) == 1 else "".join(self.pending)
        self.pending = []
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()


_access = _AccessSink()
atexit.register(_access.flush)  # lines of a last iteration the loop did not run


def batch_access_lines() -> None:
    """Write access lines once per event-loop iteration (a serving worker's setting)."""
    _access.batch = True


_text = json.encoder.encode_basestring  # json's C string encoder
_UTC = datetime.UTC
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class _Second:
    """`ts` text up to the second, made once per second (the rest is microseconds)."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def ts(self) -> str:
        now = time.time_ns() // 1000
        second, micro = divmod(now, 1_000_000)
        if second != self.second:
            stamp = datetime.datetime.fromtimestamp(second, tz=_UTC)
            self.prefix, self.second = stamp.strftime("%Y-%m-%dT%H:%M:%S."), second
        return f"{self.prefix}{micro:06d}Z"


_clock = _Second()


def _json_text(value: str | None) -> str:
    """A JSON string (or null) for a text field, redacted when it looks like a secret."""
    if value is None:
        return "null"
    if _suspect(value):
        value = redact_value(value)
    return _text(value)


def write_access_line(info: RequestInfo, *, seconds: float) -> None:
    """The `http.request` line, rendered directly: the same keys in the same order and
    the same JSON as structlog's chain makes, at a fraction of its cost. No key is
    secret-named, so only the values get the secret-value check, and only the text
    ones: one regex search over all of them when nothing looks like a secret (no pattern
    holds a NUL, so no match spans two fields), else one per field."""
    if not _access.enabled:
        return
    rid, method, path, route, ip, principal = (
        info.request_id,
        info.method,
        info.path,
        info.route,
        info.client_ip,
        info.principal,
    )
    if _suspect(f"{rid}\x00{method}\x00{path}\x00{route}\x00{ip}\x00{principal}"):
        texts = [_json_text(v) for v in (rid, method, path, route, ip, principal)]
    else:
        texts = [
            _text(rid),
            _text(method),
            _text(path),
            "null" if route is None else _text(route),
            _text(ip),
            "null" if principal is None else _text(principal),
        ]
    line = (
        f'{{"ts": "{_clock.ts()}", "level": "INFO", "event": "http.request", '
        f'"request_id": {texts[0]}, "method": {texts[1]}, "path": {texts[2]}, '
        f'"route": {texts[3]}, "status": {int(info.status)}, '
        f'"duration_ms": {round(seconds * 1000, 3)!r}, "client_ip": {texts[4]}, '
        f'"principal": {texts[5]}, "pid": {_pid}, "logger": "portcullis.access"}}\n'
    )
    _access.write(line)


def get_logger(name: str = "portcullis") -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger


def security_event(event: str, *, level: int = logging.WARNING, reason: str, **fields: Any) -> None:
    """Log a security event with the request's client IP and principal (when known)."""
    info = request_info()
    payload: MutableMapping[str, Any] = {"reason": reason}
    if info is not None:
        payload["client_ip"] = info.client_ip
        if info.principal is not None:
            payload.setdefault("principal", info.principal)
    payload.update(fields)
    get_logger("portcullis.security").log(level, event, **payload)
    tracing.event(event, reason)  # on the request's span, when tracing is on
