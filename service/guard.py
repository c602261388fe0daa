"""Request hooks: block check → authenticate → rate limit, and the response side
(abuse counting, and the request's `Outcome` handed back to the ASGI gate).

The hooks are the only writers of the request's `context.Outcome` (the route, the
principal, the rate-limit decision with any login budget the token endpoint announced):
the gate reads it for the RateLimit fields, the access line and the metrics."""

from __future__ import annotations

from typing import NoReturn

from quart import Quart, Response, current_app, g, request

from .api.current import announced_limits
from .api.declared import limits_for
from .cache import BoundedCache
from .context import Outcome, outcome_of
from .errors import BadRequest, ClientBlocked, Forbidden, OAuthError, TooManyRequests
from .logging import get_logger, security_event
from .security.authn import (
    AUTH_ATTRIBUTE,
    ambiguous_credentials,
    authenticate,
    set_authentication,
)
from .security.crosssite import failure_counts, from_another_site
from .security.ratelimit import Check, Decision, NamedLimit
from .services import Services

_COUNTED = frozenset({401, 403, 404})
_OAUTH_ENDPOINTS = frozenset({"v1.auth.token", "v1.auth.revoke"})  # RFC 6749 error shape
log = get_logger("portcullis.guard")


def _endpoint_limits(
    cache: dict[str | None, list[NamedLimit] | None], endpoint: str | None
) -> list[NamedLimit] | None:
    """`limits_for`, computed once per endpoint: declarations do not change at run time."""
    if endpoint not in cache:
        cache[endpoint] = limits_for(current_app, endpoint, list(request.blueprints))
    return cache[endpoint]


_MAX_CHECK_SETS = 10_000


def _checks(limits: list[NamedLimit], sub: str | None, address_key: str) -> list[Check]:
    """The limiter checks of one request: each limit keyed by the principal (or, without
    one, the client address key) or always by the address, as the limit says."""
    by_ip = f"ip:{address_key}"
    subject = f"p:{sub}" if sub is not None else by_ip
    return [
        Check(
            key=f"{limit.name}:{limit.window}:"
            + (subject if limit.key_kind == "principal" else by_ip),
            count=limit.count,
            window=limit.window,
            name=limit.name,
        )
        for limit in limits
    ]


def _refuse_ambiguous_credentials() -> NoReturn:
    """400 invalid_request on every route (RFC 6750 §3.1; RFC 6749 §5.2 on the OAuth
    endpoints, in their shape): no route ever picks one credential out of several."""
    detail = "Send exactly one credential in exactly one Authorization header."
    if request.endpoint in _OAUTH_ENDPOINTS:
        raise OAuthError("invalid_request", detail)
    raise BadRequest(
        detail, headers={"WWW-Authenticate": 'Bearer realm="portcullis", error="invalid_request"'}
    )


def _with_announced(decision: Decision | None, announced: Decision) -> Decision:
    """`decision` with the policies of `announced` (the login budget) in place of any
    of the same name."""
    if decision is None:
        return Decision(allowed=announced.allowed, states=list(announced.states))
    names = {state[0] for state in announced.states}
    states = [s for s in decision.states if s[0] not in names] + announced.states
    return Decision(
        allowed=decision.allowed,
        retry_after=decision.retry_after,
        states=states,
        rejected_by=decision.rejected_by,
    )


def install(app: Quart, svc: Services) -> None:
    """Register the request hooks, bound to this app's parts (no look-up per request)."""
    # Each route's declared limits, looked up on its first request (one entry per route).
    limits_cache: dict[str | None, list[NamedLimit] | None] = {}
    # The checks of (endpoint, principal, address): the same few objects every request;
    # a miss only rebuilds a few small objects.
    checks_cache: BoundedCache[tuple[str | None, str | None, str], list[Check]] = BoundedCache(
        _MAX_CHECK_SETS
    )

    async def before_request() -> None:
        # Each `request.x` through Quart's proxy costs a context look-up: resolve it once.
        req = request._get_current_object()  # type: ignore[attr-defined]
        outcome = outcome_of(req.scope) or Outcome()  # no gate: nobody reads it
        ip = req.remote_addr or "unknown"
        rule = req.url_rule
        if rule is not None:
            outcome.route = rule.rule
        endpoint = req.endpoint
        if req.path.startswith("/v1/") and svc.abuse.is_blocked(ip):
            g.refused_by_block = True
            raise ClientBlocked()
        if endpoint == "v1.auth.token" and from_another_site(
            req.headers, allowed=svc.settings.cors_origins, own=f"{req.scheme}://{req.host}"
        ):  # credentials in a form a page elsewhere posted (security/crosssite.py)
            raise Forbidden("Token requests from another site's pages are refused.")
        view = app.view_functions.get(endpoint) if endpoint else None
        if view is not None and getattr(view, AUTH_ATTRIBUTE, None) is None:
            # Deny by default: a route nobody gave an access decision is never served.
            log.error("route.no_auth_decision", endpoint=endpoint)
            raise Forbidden("This route has no access policy.")
        fields = req.headers.getlist("Authorization")
        if ambiguous_credentials(fields):
            _refuse_ambiguous_credentials()
        result = await authenticate(
            fields[0] if fields else None, svc.tokens, svc.denylist, svc.external, svc.dpop, req
        )
        set_authentication(result)
        principal = result.principal
        if principal is not None:
            outcome.principal = principal.sub
        limits = _endpoint_limits(limits_cache, endpoint)
        if not limits:
            return
        sub = principal.sub if principal is not None else None
        checks = checks_cache.get((endpoint, sub, ip))
        if checks is None:
            checks = _checks(limits, sub, svc.failures.key(ip))
            checks_cache.put((endpoint, sub, ip), checks)
        decision = await svc.limiter.check(checks)
        outcome.ratelimit = decision  # the RateLimit fields (middleware/request_context)
        if not decision.allowed:
            policy = decision.rejected_by or "default"
            svc.metrics.ratelimit_rejections.labels(policy.split("-")[0]).inc()
            security_event(
                "ratelimit.exceeded",
                reason=policy,
                retry_after=decision.retry_after,
                principal=outcome.principal,
            )
            raise TooManyRequests(decision.retry_after, policy=policy)

    async def after_request(response: Response) -> Response:
        # RateLimit fields and no-store are added as bytes by the ASGI layer
        # (middleware/request_context.py), to every answer.
        req = request._get_current_object()  # type: ignore[attr-defined]
        announced = announced_limits()
        if announced is not None:
            outcome = outcome_of(req.scope) or Outcome()  # no gate: nobody reads it
            outcome.ratelimit = _with_announced(outcome.ratelimit, announced)
        if response.status_code in _COUNTED:
            if (
                req.path.startswith("/v1/")
                and not g.get("refused_by_block", False)
                and failure_counts(
                    req.headers,
                    response.status_code,
                    allowed=svc.settings.cors_origins,
                    own=f"{req.scheme}://{req.host}",
                )
            ):
                await svc.abuse.record_failure(
                    req.remote_addr or "unknown", f"http_{response.status_code}"
                )
        return response

    app.before_request(before_request)
    app.after_request(after_request)
