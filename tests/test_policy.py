"""Secure by default: every route declares an auth decision and a rate-limit decision."""

from __future__ import annotations

import httpx
from quart import Quart
from quart_rate_limiter import QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE

from service.api.declared import limits_for
from service.security.authn import AUTH_ATTRIBUTE


def _blueprints(endpoint: str) -> list[str]:
    parts = endpoint.split(".")[:-1]
    return [".".join(parts[: i + 1]) for i in range(len(parts))][::-1]


async def test_every_route_has_auth_and_rate_limit_decisions(app: Quart) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        auth = getattr(view, AUTH_ATTRIBUTE, None)
        exempt = getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False)
        limits = limits_for(app, rule.endpoint, _blueprints(rule.endpoint))
        if auth is None:
            missing.append(f"{rule.rule} ({rule.endpoint}): no auth decision")
        if not exempt and not limits:
            missing.append(f"{rule.rule} ({rule.endpoint}): no rate-limit decision")
    assert missing == []


async def test_every_v1_route_is_rate_limited_and_non_public_unless_auth(app: Quart) -> None:
    public_v1 = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        assert not getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False), rule.rule
        assert any(
            limit.name == "default"
            for limit in limits_for(app, rule.endpoint, _blueprints(rule.endpoint)) or []
        )
        if getattr(view, AUTH_ATTRIBUTE) == "public":
            public_v1.add(rule.rule)
    assert public_v1 == {"/v1/auth/register", "/v1/auth/token", "/v1/auth/revoke"}


async def test_a_route_without_decisions_fails_the_policy(
    app: Quart, client: httpx.AsyncClient
) -> None:
    """The policy test itself: a forgotten decorator is detected."""

    async def forgotten() -> str:
        return "open door"

    app.add_url_rule("/v1/forgotten", "forgotten", forgotten)
    view = app.view_functions["forgotten"]
    assert getattr(view, AUTH_ATTRIBUTE, None) is None
    assert limits_for(app, "forgotten", []) == []
    # and at run time it is denied by default, not served
    r = await client.get("/v1/forgotten")
    assert r.status_code == 403 and "open door" not in r.text
