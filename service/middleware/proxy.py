"""Trusted proxies: the client address and scheme from the one configured forwarding header."""

from __future__ import annotations

from ..security.proxies import ProxyResolver
from .asgi import Scope


def forwarded(resolver: ProxyResolver, scope: Scope) -> Scope:
    """The scope with the client address and scheme a trusted proxy reports, from the
    one header family `PORTCULLIS_FORWARDED_HEADER` names; every other forwarding
    header (X-Forwarded-*, X-Real-IP, Forwarded) is ignored."""
    peer = scope.get("client") or ("", 0)
    socket_tls = scope.get("scheme", "http") == "https"
    client_ip, scheme = resolver.resolve(
        peer[0], scope.get("headers", ()), "https" if socket_tls else "http"
    )
    scope = dict(scope)
    scope["client"] = (client_ip, peer[1])
    scope["scheme"] = scheme
    return scope
