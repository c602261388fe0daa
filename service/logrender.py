"""The one JSON line renderer of every log line (`service/logging.py` wires it): `_shape`
puts a line's fields in order with the request's ids, the level, the time and the
process, and redacts secrets; `_json_line` writes the common plain line in one pass and
falls back to shaping then encoding, with the same output (tests/test_logging.py)."""

from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from .context import current_request
from .redaction import REDACTED, _secret_key, _suspect, redact_value


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
