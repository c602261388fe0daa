"""The one ASGI layer in front of Quart.

Every request passes each concern in this order; each concern's rules live in its own
module, and this class only sequences them in one coroutine (nested middleware classes,
each with its own coroutine and send wrapper, cost far more per request):

1. proxy: the client address and scheme a trusted proxy reports (`proxy.forwarded`);
2. request context: the request's facts (request id, trace context, client address;
   `request_context.read_facts`), set in `context.current_request` for every layer
   below, and an empty `context.Outcome` in the scope for the request hooks to fill;
   security headers, no-store, RateLimit fields and X-Request-ID on every answer
   (including the answers of the steps below), as bytes; access line and request
   metrics;
3. target: odd request targets refused, plain http redirected
   (`target.plain_request_target`, `target.answer`);
4. in-flight cap: at most `max_inflight` requests in the app, a fair share per client
   address (`inflight.Slots`), probes exempt;
5. request head and body limits (`body.check_head`, `body.watched`).

A WebSocket handshake is served as the plain GET it is (`websocket.as_http`): there are
no WebSocket routes, so it gets what any request gets, and never 101.

To wrap the whole request (a span, say), hook into `serve`: the facts are set before the
app runs, and `finish` sees the route and status.
"""

from __future__ import annotations

import time

from .. import tracing
from ..context import OUTCOME, Outcome, current_request
from ..metrics import Metrics
from ..security.proxies import ClientKeys, ProxyResolver
from . import body, target, websocket
from .asgi import PROBES, ASGIApp, Message, Receive, Scope, Send
from .inflight import Slots
from .proxy import forwarded
from .request_context import finish, last_net, read_facts, response_headers


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: ProxyResolver,
        metrics: Metrics,
        issuer: str,
        max_inflight: int,
        inflight_wait: float,
        max_body_bytes: int,
        client_keys: ClientKeys,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.metrics = metrics
        self.origin = target.https_origin(issuer)
        self.slots = Slots(max_inflight, inflight_wait)
        metrics.in_flight_limit.set(max_inflight)  # the cap beside the gauge (alerts)
        self.max_body_bytes = max_body_bytes
        self.client_keys = client_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.serve(scope, receive, send)
        elif kind == "websocket":
            await self.serve(*websocket.as_http(scope, receive, send))
        else:  # lifespan
            await self.app(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        # 1. proxy (a new scope: what the server handed in stays as it was)
        scope = forwarded(self.resolver, scope)
        # 2. request context
        facts, credentials = read_facts(scope)
        outcome = Outcome()
        scope[OUTCOME] = outcome
        method, path = scope["method"], scope["path"]
        no_store = credentials or path.startswith("/v1/")
        token = current_request.set(facts)
        span = tracing.request_started(scope, facts, method, path) if tracing.active else None
        https = scope["scheme"] == "https"
        rid = facts.request_id.encode()
        status = 0
        route: str | None = None
        started = time.perf_counter()
        self.metrics.request_started()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                message["headers"] = response_headers(
                    message.get("headers", ()),
                    https=https,
                    request_id=rid,
                    no_store=no_store,
                    ratelimit=outcome.ratelimit,
                )
            await send(message)

        try:
            # 3. target (the checks cost no await; only an answer does)
            if not https or not target.plain_request_target(scope):
                route = await target.answer(scope, send_with_headers, self.origin)
                return
            # 4. in-flight cap
            probe = path in PROBES
            key = "" if probe else self.client_keys(facts.client_ip)
            if not probe and not await self.slots.enter(key, send_with_headers):
                return
            try:
                # 5. head and body
                head = body.check_head(scope, self.max_body_bytes)
                if head is body.Head.NO_BODY:
                    await self.app(scope, receive, send_with_headers)
                elif head is body.Head.BODY:
                    await body.watched(
                        self.app, scope, receive, send_with_headers, self.max_body_bytes
                    )
                else:
                    await head.send(send_with_headers)
            finally:
                if not probe:
                    self.slots.leave(key)
        except Exception:  # the app's own handlers answer first; this is the last net
            if not await last_net(status != 0, send_with_headers):
                raise
        finally:
            finish(
                facts,
                outcome,
                self.metrics,
                method=method,
                path=path,
                status=status,
                route=route,
                duration=time.perf_counter() - started,
            )
            if span is not None:
                tracing.request_finished(span, method, route or outcome.route, status)
            current_request.reset(token)
