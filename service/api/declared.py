"""The rate limits a route declares, as the guard enforces and the OpenAPI document shows."""

from __future__ import annotations

from quart import Quart
from quart_rate_limiter import (
    QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE,
    QUART_RATE_LIMITER_LIMITS_ATTRIBUTE,
)

from ..security.ratelimit import NamedLimit


def limits_for(app: Quart, endpoint: str | None, blueprints: list[str]) -> list[NamedLimit] | None:
    """The limits declared for an endpoint (route, then its blueprints outwards);
    None when the route is explicitly exempt or unknown."""
    view = app.view_functions.get(endpoint) if endpoint else None
    if view is None or getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False):
        return None
    found: list[NamedLimit] = list(getattr(view, QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, []))
    for name in blueprints:
        found += getattr(app.blueprints.get(name), QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, [])
    unique: dict[tuple[str, int, int], NamedLimit] = {}
    for limit in found:
        unique.setdefault((limit.name, limit.count, limit.window), limit)
    return list(unique.values())
