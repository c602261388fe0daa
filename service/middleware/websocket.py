"""WebSocket handshakes, served as the plain GET requests they are.

The service has no WebSocket routes. A handshake (`Upgrade: websocket`) therefore goes
through the gate like any request — target check, in-flight cap, request hooks (block
check, authentication), access line, security headers, X-Request-ID — and gets the
answer a GET of that path gets, sent through the server's WebSocket denial response
(ASGI `websocket.http.response`). Nothing here ever accepts, so never 101. A server
without that extension closes the handshake instead (403).
"""

from __future__ import annotations

from .asgi import Message, Receive, Scope, Send

_DENIAL = "websocket.http.response"
_AS_HTTP = {"http.response.start": _DENIAL + ".start", "http.response.body": _DENIAL + ".body"}


def as_http(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
    """A WebSocket handshake's scope, receive and send, as an HTTP GET without a body."""
    http_scope = {key: value for key, value in scope.items() if key != "subprotocols"}
    http_scope["type"] = "http"
    http_scope["method"] = "GET"
    http_scope["scheme"] = "https" if scope.get("scheme") == "wss" else "http"
    http_scope.setdefault("http_version", "1.1")
    denial = _DENIAL in (scope.get("extensions") or {})
    asked = False
    closed = False

    async def receive_http() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return {"type": "http.disconnect"}
            # websocket.connect (the handshake itself) carries nothing for a GET

    async def send_http(message: Message) -> None:
        nonlocal closed
        kind = _AS_HTTP.get(message["type"])
        if kind is None:  # nothing else is sent for an HTTP request
            return
        if denial:
            await send({**message, "type": kind})
        elif not closed:
            closed = True
            await send({"type": "websocket.close", "code": 1008})

    return http_scope, receive_http, send_http
