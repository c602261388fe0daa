"""Workarounds for Hypercorn 0.17/0.18 protocol bugs, in one place; installed at import.

`service.asgi` (the module Hypercorn workers load before they build the TLS context and
start serving) calls `install()`. Each patch names the upstream report (docs/upstream.md).

1. HTTP/1.1, answer sent before the request body arrived: Hypercorn closes the connection
   after such a response without saying so, and a keep-alive client's next request fails.
   The response now carries `Connection: close` whenever the body is still incomplete.
2. HTTP/2, answer sent before the request body arrived: the stream leaves Hypercorn's table
   and the client's next DATA frame raises `KeyError`, which tears down the whole
   connection. Such a stream now gets `RST_STREAM(NO_ERROR)` once its response is complete
   (RFC 9113 §8.1) and late frames are ignored (their bytes still acknowledged).
3. HTTP/2 rapid reset: streams opened and reset in the same read were still run, and the
   `keep_alive_max_requests` GOAWAY was not enforced for streams of the same read. Now a
   stream reset in the read that opened it is never started, no stream is started after
   the GOAWAY, and a client that resets far more streams than it completes is sent
   GOAWAY(ENHANCE_YOUR_CALM) and disconnected: more than `RESET_FLOOR` resets and more
   than `RESET_RATIO` times the completed responses. (A reset stream that was already
   running gets `http.disconnect`; Quart cancels its handler.) The 1000-stream GOAWAY is
   graceful (RFC 9113 §6.8): Hypercorn's `close_connection` closed h2's state at once, so
   streams still running could never answer; now the GOAWAY frame is written by hand,
   streams opened after it are refused (REFUSED_STREAM: safe to retry), and the
   connection closes once the started ones are answered.
4. TLS groups: Python before 3.15 can set only one ECDH curve, so Hypercorn's context
   offers OpenSSL's default groups (X448, secp521r1, ...). The context now offers Mozilla
   "intermediate": X25519, prime256v1, secp384r1.
5. HTTP/1.1 response headers: h11 runs two regular expressions over every header of
   every response (`normalize_and_validate`), about 0.8 µs a header; the contract puts
   16 headers on an API answer, most of them the same bytes on every answer. A header
   (name, value) that h11 has accepted once is now remembered (bounded), and only new
   pairs go through h11's own check; framing headers (Content-Length, Transfer-Encoding)
   are still checked together by h11 whenever there is more than one.
"""

from __future__ import annotations

import ctypes
import importlib
import ssl
from importlib.metadata import version
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11
import h11._headers
import hyperframe.frame
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol
from priority.priority import MissingStreamError

TLS_GROUPS = b"X25519:P-256:P-384"
RESET_FLOOR = 100
RESET_RATIO = 2
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL: SSL_CTX_set1_groups_list is SSL_CTX_ctrl(ctx, 92, ...)
_SUPPORTED = ("0.17.", "0.18.")

_original_h11_stream_send = H11Protocol.stream_send
_original_create_ssl_context = Config.create_ssl_context


# 1. HTTP/1.1 ---------------------------------------------------------------------------


async def _h11_stream_send(self: H11Protocol, event: Any) -> None:
    if isinstance(event, Response) and event.status_code >= 200:
        # Hypercorn's own branch for a final response, with 1. and 5.
        headers = [*event.headers, *self.config.response_headers("h11")]
        if (
            self.connection.their_state is h11.SEND_BODY
            or self.keep_alive_requests >= self.config.keep_alive_max_requests
        ):
            # 1. Hypercorn will close the connection after this response (the body is
            # unread); say so, or the client sends its next request into a closing socket.
            headers.append((b"connection", b"close"))
        await self._send_h11_event(
            h11.Response(headers=h11_headers(headers), status_code=event.status_code)
        )
        return
    await _original_h11_stream_send(self, event)


# 5. HTTP/1.1 response headers ----------------------------------------------------------

VALIDATED_MAX = 4096  # remembered header pairs; the memo starts over when full
VALIDATED_PAIR_MAX = 512  # longer name + value: checked every time, never remembered
# Never remembered: Set-Cookie (may carry a session: kept out of memory), X-Request-ID
# (new on every answer: it would never be found again, only push stable pairs out).
_NEVER_REMEMBERED = frozenset({b"set-cookie", b"x-request-id"})
_validated: dict[tuple[bytes, bytes], tuple[bytes, bytes, bytes]] = {}
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


def h11_headers(headers: list[tuple[bytes, bytes]]) -> h11._headers.Headers:
    """h11's `normalize_and_validate(headers)`, with each (name, value) pair h11 has
    accepted before taken from a bounded memo instead of checked again. The same result
    whenever h11 accepts the list, and refused whenever h11 refuses it (a refused pair is
    never remembered; with several bad pairs the first one found names the error)."""
    items = []
    framing = 0
    memo = _validated
    for pair in headers:
        item = memo.get(pair)
        if item is None:
            (item,) = h11._headers.normalize_and_validate([pair])._full_items
            if len(item[1]) + len(item[2]) <= VALIDATED_PAIR_MAX and (
                item[1] not in _NEVER_REMEMBERED
            ):
                if len(memo) >= VALIDATED_MAX:
                    memo.clear()
                memo[pair] = item
        if item[1] in _FRAMING:
            framing += 1
        items.append(item)
    if framing > 1:  # duplicates or both: h11 decides over the whole list (and refuses)
        return h11._headers.normalize_and_validate(headers)
    return h11._headers.Headers(items)


# 2. and 3. HTTP/2 ----------------------------------------------------------------------


class _Counts:
    """Per-connection stream accounting for the reset bound."""

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


async def _h2_go_away(self: H2Protocol, counts: _Counts, code: h2.errors.ErrorCodes) -> None:
    counts.going_away = True
    self.connection.close_connection(error_code=code, last_stream_id=counts.last_started)
    await self._flush()


async def _h2_go_away_gracefully(self: H2Protocol, counts: _Counts) -> None:
    """GOAWAY(NO_ERROR) naming the last stream started, then finish those streams and
    close (RFC 9113 §6.8). h2's `close_connection` would end the connection's state at
    once, so the streams still running could never send their answers: the frame is
    written here by hand and h2 is closed only when nothing is left in flight."""
    counts.going_away = counts.draining = True
    frame = hyperframe.frame.GoAwayFrame(stream_id=0)
    frame.last_stream_id = counts.last_started
    frame.error_code = h2.errors.ErrorCodes.NO_ERROR
    await self._flush()
    await self.send(RawData(data=frame.serialize()))
    await _h2_close_if_drained(self, counts)


async def _h2_close_if_drained(self: H2Protocol, counts: _Counts) -> None:
    if counts.draining and not self.closed and not self.streams and not self.stream_buffers:
        counts.draining = False
        self.connection.close_connection(last_stream_id=counts.last_started)
        await self._flush()
        await self.send(Closed())


_original_close_stream = H2Protocol._close_stream


async def _h2_close_stream(self: H2Protocol, stream_id: int) -> None:
    # Hypercorn's, then the graceful GOAWAY's check: was this the last stream in flight?
    await _original_close_stream(self, stream_id)
    await _h2_close_if_drained(self, _counts(self))


async def _h2_handle_events(self: H2Protocol, events: list[h2.events.Event]) -> None:
    # Hypercorn 0.17.3/0.18.0's H2Protocol._handle_events, with the changes marked "Portcullis".
    counts = _counts(self)
    # Portcullis: streams the client opened and reset within this read are never started.
    reset_here = {e.stream_id for e in events if isinstance(e, h2.events.StreamReset)}
    for event in events:
        if isinstance(event, h2.events.RequestReceived):
            if counts.going_away or event.stream_id in reset_here:
                self.keep_alive_requests += 1  # Portcullis: counted, but never started
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
                await self._create_stream(event)  # counts it in keep_alive_requests
                counts.last_started = event.stream_id
                await self.send(Updated(idle=False))

            if self.keep_alive_requests >= self.config.keep_alive_max_requests:
                await _h2_go_away_gracefully(self, counts)
        elif isinstance(event, h2.events.DataReceived):
            # Portcullis: the stream may be gone (answered early): ignore, but still
            # acknowledge the bytes so the connection's flow-control window stays open.
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                await stream.handle(Body(stream_id=event.stream_id, data=event.data))
            self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:  # else: response sent before the full request
                await stream.handle(EndBody(stream_id=event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                counts.resets += 1  # Portcullis: the reset bound
            await self._close_stream(event.stream_id)
            await self._window_updated(event.stream_id)
            await _h2_close_if_drained(self, counts)
            if (
                counts.resets > RESET_FLOOR
                and counts.resets > RESET_RATIO * counts.completed
                and not counts.going_away
            ):
                await _h2_go_away(self, counts, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
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


async def _h2_send_data(self: H2Protocol, stream_id: int) -> None:
    # Hypercorn 0.17.3/0.18.0's H2Protocol._send_data, with the change marked "Portcullis".
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
            _counts(self).completed += 1
            # Portcullis: the response is complete but the client is still sending the
            # request body: ask it to stop, for this stream only (RFC 9113 §8.1).
            h2_stream = self.connection.streams.get(stream_id)
            if h2_stream is not None and not h2_stream.closed:
                self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
            await self._flush()
            del self.stream_buffers[stream_id]
            self.priority.remove_stream(stream_id)
            await _h2_close_if_drained(self, _counts(self))  # Portcullis
    except (h2.exceptions.StreamClosedError, KeyError, h2.exceptions.ProtocolError):
        # Stream or connection has closed whilst waiting to send data.
        buffer = self.stream_buffers.pop(stream_id, None)
        if buffer is not None:
            await buffer.close()
        try:
            self.priority.remove_stream(stream_id)
        except MissingStreamError:
            pass


# 4. TLS groups -------------------------------------------------------------------------


def set_tls_groups(context: ssl.SSLContext, groups: bytes = TLS_GROUPS) -> None:
    """Restrict the key-exchange groups of `context` (SSL_CTX_set1_groups_list).

    Python < 3.15 has no API for it, so this calls OpenSSL on the context's SSL_CTX,
    which CPython stores right after the object header; the pointer is verified against
    the context's options before use."""
    libssl = ctypes.CDLL(importlib.import_module("_ssl").__file__)  # finds libssl's symbols
    libssl.SSL_CTX_get_options.restype = ctypes.c_uint64
    libssl.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_ctrl.restype = ctypes.c_long
    libssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not ctx or libssl.SSL_CTX_get_options(ctx) != int(context.options):
        raise RuntimeError("cannot locate the OpenSSL context to restrict TLS groups")
    if libssl.SSL_CTX_ctrl(ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, groups) != 1:
        raise RuntimeError(f"OpenSSL refused the TLS groups {groups.decode()}")


def _create_ssl_context(self: Config) -> ssl.SSLContext | None:
    context = _original_create_ssl_context(self)
    if context is not None:
        set_tls_groups(context)
    return context


def install() -> None:
    """Apply every patch (idempotent). Refuses a Hypercorn these were not written for."""
    installed = version("hypercorn")
    if not installed.startswith(_SUPPORTED):
        raise RuntimeError(f"service.server_fixes supports Hypercorn 0.17/0.18, not {installed}")
    H11Protocol.stream_send = _h11_stream_send  # type: ignore[method-assign]
    H2Protocol._handle_events = _h2_handle_events  # type: ignore[method-assign]
    H2Protocol._send_data = _h2_send_data  # type: ignore[method-assign]
    H2Protocol._close_stream = _h2_close_stream  # type: ignore[method-assign]
    Config.create_ssl_context = _create_ssl_context  # type: ignore[method-assign]
