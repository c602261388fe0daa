"""The one ASGI layer in front of Quart.

Every request passes each concern in this order; each concern's rules live in its own
module, and this class only sequences them in one coroutine (five nested middleware
classes, each with its own coroutine and send wrapper, cost a third of the service's own
per-request time before they were merged; bench/PROFILE.md, R4):

1. proxy: the client address and scheme a trusted proxy reports (`proxy.forwarded`);
2. request context: request id; security headers, no-store, RateLimit fields and
   X-Request-ID on every answer (including the answers of the steps below), as bytes;
   access line and request metrics;
3. target: odd request targets refused, plain http redirected
   (`target.plain_request_target`, `target.answer`);
4. in-flight cap: at most `max_inflight` requests in the app (`inflight.Slots`), probes
   exempt;
5. request head and body limits (`body.check_head`, `body.watched`).
"""

from __future__ import annotations

import time

from .. import tracing
from ..context import RequestInfo, current_request
from ..metrics import Metrics
from ..security.proxies import ProxyResolver
from . import body, target
from .asgi import PROBES, ASGIApp, Message, Receive, Scope, Send
from .inflight import Slots
from .proxy import forwarded
from .request_context import finish, last_net, request_facts, response_headers


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
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.metrics = metrics
        self.origin = target.https_origin(issuer)
        self.slots = Slots(max_inflight, inflight_wait)
        metrics.in_flight_limit.set(max_inflight)  # the cap beside the gauge (alerts)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                scope = forwarded(self.resolver, scope)
            await self.app(scope, receive, send)
            return
        # 1. proxy
        scope = forwarded(self.resolver, scope)
        # 2. request context
        rid, credentials = request_facts(scope)
        path = scope["path"]
        no_store = credentials or path.startswith("/v1/")
        info = RequestInfo(
            request_id=rid, client_ip=scope["client"][0], method=scope["method"], path=path
        )
        token = current_request.set(info)
        span = tracing.request_started(scope, info) if tracing.active else None
        https = scope["scheme"] == "https"
        rid_bytes = rid.encode()
        started = time.perf_counter()
        self.metrics.request_started()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                message = dict(message)
                message["headers"] = response_headers(
                    message.get("headers", ()),
                    https=https,
                    request_id=rid_bytes,
                    no_store=no_store,
                    ratelimit=info.ratelimit,
                )
            await send(message)

        try:
            # 3. target (the checks cost no await; only an answer does)
            if not https or not target.plain_request_target(scope):
                await target.answer(scope, send_with_headers, self.origin)
                return
            # 4. in-flight cap
            probe = path in PROBES
            if not probe and not await self.slots.enter(send_with_headers):
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
                    self.slots.leave()
        except Exception:  # the app's own handlers answer first; this is the last net
            if not await last_net(info, send_with_headers):
                raise
        finally:
            finish(info, self.metrics, path, time.perf_counter() - started)
            if span is not None:
                tracing.request_finished(span, info)
            current_request.reset(token)
