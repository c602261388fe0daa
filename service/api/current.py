"""Request-scoped accessors: the current app's `Services` (valid inside a request or an
app context), and the rate limits a route announces for its answer. The request's
authentication has its own accessor in security/authn.py."""

from __future__ import annotations

from quart import current_app, g

from ..security.ratelimit import Decision
from ..services import EXTENSION, Services


def services() -> Services:
    svc: Services = current_app.extensions[EXTENSION]
    return svc


def announce_limits(decision: Decision) -> None:
    """Add the policies of `decision` (the token endpoint's login budget) to this
    answer's RateLimit fields; the request hooks hand them to the ASGI layer. A later
    announcement replaces the policies of the same name."""
    earlier: Decision | None = g.get("announced_limits")
    if earlier is not None:
        names = {state[0] for state in decision.states}
        states = [s for s in earlier.states if s[0] not in names] + decision.states
        decision = Decision(allowed=decision.allowed, states=states)
    g.announced_limits = decision


def announced_limits() -> Decision | None:
    decision: Decision | None = g.get("announced_limits")
    return decision
