"""Trusted proxies: the client address and scheme from the one configured forwarding header."""

from __future__ import annotations

from ..security.proxies import ProxyResolver
from .asgi import ASGIApp, Receive, Scope, Send


class TrustedProxyMiddleware:
    """Replace the client address and scheme with those a trusted proxy reports, from
    the one header family `PORTCULLIS_FORWARDED_HEADER` names; else ignore every
    forwarding header (X-Forwarded-*, X-Real-IP, Forwarded)."""

    def __init__(self, app: ASGIApp, resolver: ProxyResolver) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client") or ("", 0)
            socket_tls = scope.get("scheme", "http") in ("https", "wss")
            client_ip, scheme = self.resolver.resolve(
                peer[0], scope.get("headers", ()), "https" if socket_tls else "http"
            )
            scope = dict(scope)
            scope["client"] = (client_ip, peer[1])
            if scope["type"] == "websocket":
                scheme = "wss" if scheme == "https" else "ws"
            scope["scheme"] = scheme
        await self.app(scope, receive, send)
