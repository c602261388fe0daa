"""Request decoding: strict JSON bodies, query strings and OAuth forms.

quart-schema's `validate_request` parses with Quart's `get_json`, which treats a
non-JSON content type as `None` (a 422 instead of 415), accepts duplicate member names
and NaN, and lets a RecursionError escape as a 500. These decorators decode strictly
and then validate with the same pydantic models, registering them with quart-schema so
the OpenAPI document still describes every body and query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    DataSource,
)

from ..errors import BadRequest, OAuthError, UnsupportedMediaType, ValidationFailed
from .problems import pydantic_errors

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
MAX_DIGITS = 4300


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            raise ValueError(f"duplicate member name {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_DIGITS:
        raise ValueError("number too long")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def parse_json(data: bytes) -> Any:
    """Strict RFC 8259 parsing; BadRequest (400) on anything unparseable."""
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except (ValueError, RecursionError) as exc:
        detail = "The body is not valid JSON."
        if isinstance(exc, RecursionError):
            detail = "The JSON body is nested too deeply."
        elif "duplicate member" in str(exc) or "not valid JSON" in str(exc):
            detail = f"The body is not valid JSON: {exc}."
        raise BadRequest(detail) from None


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(errors=pydantic_errors(exc)) from None


async def read_json(model: type[M]) -> M:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")
    data = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    return validate(model, parse_json(data if isinstance(data, bytes) else data.encode()))


def json_body(model: type[M]) -> Callable[[F], F]:
    """Decode and validate the JSON body into `data`; 415/400/422 otherwise."""

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.JSON))

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, data=await read_json(model), **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def query(model: type[M]) -> Callable[[F], F]:
    """Validate the query string into `query_args`; 422 on invalid values."""

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, model)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {key: request.args.getlist(key)[-1] for key in request.args}
            return await func(*args, query_args=validate(model, values), **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def form_body(model: type[M]) -> Callable[[F], F]:
    """Document an OAuth form body in OpenAPI; the handler parses it with `read_form`
    (RFC 6749 rules: repeated parameters refused, unknown ones ignored)."""

    def decorator(func: F) -> F:
        setattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.FORM))
        return func

    return decorator


async def read_form() -> dict[str, str]:
    """An RFC 6749 form body: url-encoded, each parameter at most once."""
    if not request.mimetype and not request.content_length:
        return {}  # an empty body: the missing parameters are reported as such
    if request.mimetype != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("The body must be application/x-www-form-urlencoded.")
    form = await request.form
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1:
            raise OAuthError("invalid_request", f"Parameter {key!r} is repeated.")
        if "\x00" in values[0] or len(values[0]) > 4096:
            raise OAuthError("invalid_request", f"Parameter {key!r} is invalid.")
        out[key] = values[0]
    return out
