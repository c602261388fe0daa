"""The ASGI middlewares, one small class per module (each: `__init__` + `async __call__`).

Order, outermost first (see `service.app.create_app`):
TrustedProxy → RequestContext → HTTPSRedirect → InflightLimit → BodyLimit → Quart.
"""

from __future__ import annotations

from .body import BodyLimitMiddleware
from .inflight import InflightLimitMiddleware
from .proxy import TrustedProxyMiddleware
from .request_context import RequestContextMiddleware
from .target import HTTPSRedirectMiddleware, plain_request_target

__all__ = [
    "BodyLimitMiddleware",
    "HTTPSRedirectMiddleware",
    "InflightLimitMiddleware",
    "RequestContextMiddleware",
    "TrustedProxyMiddleware",
    "plain_request_target",
]
