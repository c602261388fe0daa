"""The service's Quart: fast JSON responses, and a request that remembers its blueprints.

quart-schema converts every handler result through `model_dump`, which builds a new
pydantic `TypeAdapter` for each plain dict (body and headers alike), a noticeable share
of a small request's CPU (bench/PROFILE.md). Results that are already JSON-able
(pydantic models, dicts, lists) are serialised here directly instead; anything else
still goes through quart-schema.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from quart import Quart, Request, Response
from quart.typing import ResponseTypes
from quart_schema.conversion import convert_response_return_value

_JSON = "application/json"


def _body(value: Any) -> bytes | None:
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return None


class FastRequest(Request):
    """Quart's request, with `blueprints` worked out once per matched rule: Quart asks
    for it three times a request (before-request hooks, response processing, teardown),
    each time importing a helper and splitting the endpoint name again."""

    _blueprints: tuple[Any, list[str]] | None = None

    @property
    def blueprints(self) -> list[str]:
        rule, cached = self.url_rule, self._blueprints
        if cached is not None and cached[0] is rule:
            return cached[1]
        names = super().blueprints
        self._blueprints = (rule, names)
        return names


class PortcullisQuart(Quart):
    """Quart with `FastRequest` and a `make_response` that serialises JSON-able results
    directly, and converts anything else the way quart-schema does
    (`convert_response_return_value`) before Quart's own `make_response`.

    `QuartSchema(app)` wraps the instance's `make_response` with that same conversion,
    which would run first on every result: `create_app` removes that wrapper
    (`use_own_make_response`), so the conversion runs once, and only where needed."""

    request_class = FastRequest

    async def make_response(self, result: Any) -> ResponseTypes:
        value, status, headers = result, None, None
        if isinstance(result, tuple):
            if len(result) == 3:
                value, status, headers = result
            elif len(result) == 2:
                value, second = result
                status, headers = (second, None) if isinstance(second, int) else (None, second)
        body = _body(value)
        if body is None:
            return await super().make_response(convert_response_return_value(result))
        response = Response(body, status=status or 200, content_type=_JSON)
        if headers:
            response.headers.update(headers)
        return response


def use_own_make_response(app: Quart) -> None:
    """Drop the instance-level `make_response` wrapper `QuartSchema(app)` installs, so
    the class's runs (it converts results itself)."""
    if isinstance(app, PortcullisQuart):
        vars(app).pop("make_response", None)


def no_content(status: int = 204) -> Response:
    """204/304: no body, so no Content-Type or Content-Length (RFC 9110 §8.6, §15.3.5)."""
    response = Response(b"", status=status)
    for name in ("Content-Type", "Content-Length"):
        response.headers.pop(name, None)
    return response
