"""Per-request state shared by the ASGI middleware and the Quart app.

The middleware creates one `RequestInfo` per request and stores it in a context
variable; tasks Quart spawns inherit the variable, and mutate the same object, so
the access log sees the route and principal the app resolved.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    client_ip: str
    method: str = ""
    path: str = ""
    route: str | None = None
    principal: str | None = None
    status: int = 0
    # The rate-limit decision behind the RateLimit fields of the answer
    # (security.ratelimit.Decision; set by the request hooks, extended by the login).
    ratelimit: Any = None


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "portcullis_request", default=None
)


def request_info() -> RequestInfo | None:
    return current_request.get()
