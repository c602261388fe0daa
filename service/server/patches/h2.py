"""HTTP/2: early answers, rapid-reset floods and the graceful GOAWAY (docs/upstream.md).

1. An answer sent before the request body arrived: the stream leaves Hypercorn's table and
   the client's next DATA frame raised `KeyError`, tearing down every stream of the
   connection. Late frames are now ignored (their bytes still acknowledged, so the
   connection's window stays open), and such a stream gets `RST_STREAM(NO_ERROR)` once its
   response is complete (RFC 9113 §8.1).
2. Rapid reset: a stream reset in the read that opened it is never started, no stream is
   started after GOAWAY, and a client that resets more than `RESET_FLOOR` streams and more
   than `RESET_RATIO` times the streams it completed gets GOAWAY(ENHANCE_YOUR_CALM) and is
   disconnected. (A reset stream that was already running gets `http.disconnect`.)
3. The `keep_alive_max_requests` GOAWAY is graceful (RFC 9113 §6.8): Hypercorn's
   `close_connection` ended h2's state at once, so running streams could never answer. The
   frame is written by hand, streams opened after it are refused (REFUSED_STREAM: safe to
   retry), and the connection closes once the started ones are answered.
"""

from __future__ import annotations

import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.events import Body, EndBody
from hypercorn.protocol.h2 import H2Protocol
from priority.priority import MissingStreamError

from .upstream import replaces

RESET_FLOOR = 100
RESET_RATIO = 2


def _upstream(name: str, sha256: str) -> object:
    function = getattr(H2Protocol, name)
    return replaces(
        f"hypercorn.protocol.h2.H2Protocol.{name}",
        getattr(function, "portcullis_upstream", function),
        sha256,
    )


_upstream_handle_events = _upstream(
    "_handle_events", "3378aef0a2348f0def6e0044697ba0623985794f9b186efb5fbaf12733f4feb5"
)
_upstream_send_data = _upstream(
    "_send_data", "a89ce4286f36982057297d5c3302777cbcdb303c52eeb0936feaf5d95dd88eef"
)
_upstream_close_stream = _upstream(
    "_close_stream", "a292549791640b651dc636a981d58eb25117578cc09d85929bef25d12fc425ed"
)


class _Counts:
    """Per-connection stream accounting for the reset bound and the graceful GOAWAY."""

    __slots__ = ("completed", "draining", "going_away", "last_started", "resets")

    def __init__(self) -> None:
        self.completed = 0
        self.resets = 0
        self.last_started = 0
        self.going_away = False
        self.draining = False  # a graceful GOAWAY was sent; close once in-flight streams end


def _counts(protocol: H2Protocol) -> _Counts:
    counts: _Counts | None = getattr(protocol, "_portcullis_counts", None)
    if counts is None:
        counts = _Counts()
        protocol._portcullis_counts = counts  # type: ignore[attr-defined]
    return counts


async def _go_away(self: H2Protocol, counts: _Counts, code: h2.errors.ErrorCodes) -> None:
    counts.going_away = True
    self.connection.close_connection(error_code=code, last_stream_id=counts.last_started)
    await self._flush()


async def _go_away_gracefully(self: H2Protocol, counts: _Counts) -> None:
    """GOAWAY(NO_ERROR) naming the last stream started, then finish those streams and
    close. h2's `close_connection` would end the connection's state at once, so the frame
    is written here and h2 is closed only when nothing is left in flight."""
    counts.going_away = counts.draining = True
    frame = hyperframe.frame.GoAwayFrame(stream_id=0)
    frame.last_stream_id = counts.last_started
    frame.error_code = h2.errors.ErrorCodes.NO_ERROR
    await self._flush()
    await self.send(RawData(data=frame.serialize()))
    await _close_if_drained(self, counts)


async def _close_if_drained(self: H2Protocol, counts: _Counts) -> None:
    if counts.draining and not self.closed and not self.streams and not self.stream_buffers:
        counts.draining = False
        self.connection.close_connection(last_stream_id=counts.last_started)
        await self._flush()
        await self.send(Closed())


async def _close_stream(self: H2Protocol, stream_id: int) -> None:
    # Hypercorn's own, then 3.'s check: was this the last stream in flight?
    await _upstream_close_stream(self, stream_id)  # type: ignore[operator]
    await _close_if_drained(self, _counts(self))


async def _handle_events(self: H2Protocol, events: list[h2.events.Event]) -> None:
    # Hypercorn 0.18.0's H2Protocol._handle_events; every difference is marked "Portcullis".
    counts = _counts(self)  # Portcullis
    # Portcullis (2.): streams the client opened and reset within this read are never started.
    reset_here = {e.stream_id for e in events if isinstance(e, h2.events.StreamReset)}
    for event in events:
        if isinstance(event, h2.events.RequestReceived):
            # Portcullis (2., 3.): after GOAWAY, or reset in this read: counted, never started.
            if counts.going_away or event.stream_id in reset_here:
                self.keep_alive_requests += 1
                if counts.draining and event.stream_id not in reset_here:
                    # opened before the client saw our GOAWAY: refused, so it may retry
                    self.connection.reset_stream(
                        event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM
                    )
                continue
            if self.context.terminated.is_set():
                self.connection.reset_stream(event.stream_id)
                self.connection.update_settings(
                    {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0}
                )
            else:
                await self._create_stream(event)
                counts.last_started = event.stream_id  # Portcullis (3.)
                await self.send(Updated(idle=False))

            # Portcullis (3.): `>=` (upstream `>` started one stream over the bound), and a
            # graceful GOAWAY instead of `self.connection.close_connection()`.
            if self.keep_alive_requests >= self.config.keep_alive_max_requests:
                await _go_away_gracefully(self, counts)
        elif isinstance(event, h2.events.DataReceived):
            # Portcullis (1.): the stream may be gone (answered early): ignore its data, but
            # still acknowledge the bytes (upstream: `self.streams[...]` raised KeyError).
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                await stream.handle(Body(stream_id=event.stream_id, data=event.data))
            self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            # Portcullis: a lookup instead of upstream's try/except KeyError (same effect).
            stream = self.streams.get(event.stream_id)
            if stream is not None:  # else: response sent before the full request
                await stream.handle(EndBody(stream_id=event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                counts.resets += 1  # Portcullis (2.)
            await self._close_stream(event.stream_id)
            await self._window_updated(event.stream_id)
            # Portcullis (2.): the reset bound.
            if (
                counts.resets > RESET_FLOOR
                and counts.resets > RESET_RATIO * counts.completed
                and not counts.going_away
            ):
                await _go_away(self, counts, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                await self.send(Closed())
                return
        elif isinstance(event, h2.events.WindowUpdated):
            await self._window_updated(event.stream_id)
        elif isinstance(event, h2.events.PriorityUpdated):
            await self._priority_updated(event)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                await self._window_updated(None)
        elif isinstance(event, h2.events.ConnectionTerminated):
            await self.send(Closed())
    await self._flush()


async def _send_data(self: H2Protocol, stream_id: int) -> None:
    # Hypercorn 0.18.0's H2Protocol._send_data; every difference is marked "Portcullis".
    try:
        chunk_size = min(
            self.connection.local_flow_control_window(stream_id),
            self.connection.max_outbound_frame_size,
        )
        chunk_size = max(0, chunk_size)
        data = await self.stream_buffers[stream_id].pop(chunk_size)
        if data:
            self.connection.send_data(stream_id, data)
            await self._flush()
        else:
            self.priority.block(stream_id)

        if self.stream_buffers[stream_id].complete:
            self.connection.end_stream(stream_id)
            _counts(self).completed += 1  # Portcullis (2.): the reset bound's denominator
            # Portcullis (1.): the response is complete but the client is still sending the
            # request body: ask it to stop, for this stream only (RFC 9113 §8.1).
            h2_stream = self.connection.streams.get(stream_id)
            if h2_stream is not None and not h2_stream.closed:
                self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
            await self._flush()
            del self.stream_buffers[stream_id]
            self.priority.remove_stream(stream_id)
            await _close_if_drained(self, _counts(self))  # Portcullis (3.)
    except (h2.exceptions.StreamClosedError, KeyError, h2.exceptions.ProtocolError):
        # Stream or connection has closed whilst waiting to send
        # data, not a problem - just force close it.
        # Portcullis (1.): the buffer or the priority entry may already be gone (a stream
        # closed early); upstream's `del` and `remove_stream` raised from here.
        buffer = self.stream_buffers.pop(stream_id, None)
        if buffer is not None:
            await buffer.close()
        try:
            self.priority.remove_stream(stream_id)
        except MissingStreamError:
            pass


_handle_events.portcullis_upstream = _upstream_handle_events  # type: ignore[attr-defined]
_send_data.portcullis_upstream = _upstream_send_data  # type: ignore[attr-defined]
_close_stream.portcullis_upstream = _upstream_close_stream  # type: ignore[attr-defined]


def install() -> None:
    H2Protocol._handle_events = _handle_events  # type: ignore[method-assign]
    H2Protocol._send_data = _send_data  # type: ignore[method-assign]
    H2Protocol._close_stream = _close_stream  # type: ignore[method-assign]
