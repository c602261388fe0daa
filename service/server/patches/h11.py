"""HTTP/1.1: an answer sent before the request body has arrived says `Connection: close`.

Hypercorn closes the connection after such an answer (`_maybe_recycle`: the client's state
is not DONE) without saying so, and a keep-alive client sends its next request into the
closing socket. docs/upstream.md, "An answer sent before the request body has arrived".
"""

from __future__ import annotations

from itertools import chain

import h11
from hypercorn.events import RawData
from hypercorn.protocol.events import (
    Body,
    Data,
    EndBody,
    EndData,
    InformationalResponse,
    Response,
    StreamClosed,
)
from hypercorn.protocol.events import (
    Event as StreamEvent,
)
from hypercorn.protocol.h11 import H11Protocol

from .upstream import replaces

_upstream_stream_send = replaces(
    "hypercorn.protocol.h11.H11Protocol.stream_send",
    getattr(H11Protocol.stream_send, "portcullis_upstream", H11Protocol.stream_send),
    "56a36254a368d71ab24ee76d72783226387f6ce3a82c52840a947b9d905ebf5b",
)


async def stream_send(self: H11Protocol, event: StreamEvent) -> None:
    # Hypercorn 0.18.0's H11Protocol.stream_send; the one difference is marked "Portcullis".
    if isinstance(event, Response):
        if event.status_code >= 200:
            headers = list(chain(event.headers, self.config.response_headers("h11")))
            if (
                self.keep_alive_requests >= self.config.keep_alive_max_requests
                # Portcullis: the request body is still arriving, so Hypercorn will close the
                # connection after this answer (`_maybe_recycle`): say so.
                or self.connection.their_state is h11.SEND_BODY
            ):
                headers.append((b"connection", b"close"))
            await self._send_h11_event(
                h11.Response(
                    headers=headers,
                    status_code=event.status_code,
                )
            )
        else:
            await self._send_h11_event(
                h11.InformationalResponse(
                    headers=list(chain(event.headers, self.config.response_headers("h11"))),
                    status_code=event.status_code,
                )
            )
    elif isinstance(event, InformationalResponse):
        pass  # Ignore for HTTP/1
    elif isinstance(event, Body):
        await self._send_h11_event(h11.Data(data=event.data))
    elif isinstance(event, EndBody):
        await self._send_h11_event(h11.EndOfMessage())
    elif isinstance(event, Data):
        await self.send(RawData(data=event.data))
    elif isinstance(event, EndData):
        pass
    elif isinstance(event, StreamClosed):
        await self._maybe_recycle()


stream_send.portcullis_upstream = _upstream_stream_send  # type: ignore[attr-defined]


def install() -> None:
    H11Protocol.stream_send = stream_send  # type: ignore[method-assign]
