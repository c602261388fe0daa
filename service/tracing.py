"""OpenTelemetry tracing, configured by the standard `OTEL_*` variables alone.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and `OTEL_SDK_DISABLED` is not `true`: then nothing
of the SDK is imported, and each hook costs one module attribute read (`active`).

When on, each worker process builds its own provider in `before_serving` (after Hypercorn
started the worker, so no exporter thread or connection crosses a fork) and flushes it in
`after_serving`, bounded by the drain time. Spans leave through a batch processor: a
bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, spans beyond it are dropped) emptied by a
background thread with a bounded export timeout, so a slow or unreachable collector costs
a request only the append to that queue.

What a span may hold: the request's method, route template, path (never the query
string), scheme, protocol version, status and client address; for database calls the SQL
text (values are bound parameters, never in the text) and for Redis the command name.
Never a header, a token, a password, a client secret or a query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import threading
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import RequestFacts

log = logging.getLogger("portcullis.tracing")

# Read by every hook: False (the default) means tracing is off and the hook returns at once.
active = False
_tracer: Any = None
_provider: Any = None
# The OpenTelemetry functions the hooks call, bound once by `start` (an import statement
# in a hook costs more than the hook's own work).
_api: Any = None
_NULL = contextlib.nullcontext()
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
DEFAULT_SERVICE_NAME = "portcullis"
_GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
# The flush at shutdown waits at most this long (and never longer than the drain time).
MAX_FLUSH_SECONDS = 5.0


def _env(environ: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return ""


def configuration_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why tracing stays off although an endpoint is set (None: it can run)."""
    environ = os.environ if environ is None else environ
    exporter = _env(environ, "OTEL_TRACES_EXPORTER") or "otlp"
    if exporter != "otlp":
        return f"OTEL_TRACES_EXPORTER={exporter}: only otlp (or none) is supported"
    protocol = _protocol(environ)
    if protocol == "grpc":
        if importlib.util.find_spec(_GRPC_EXPORTER.rpartition(".")[0]) is None:
            return "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the otlp-grpc extra installed"
    elif protocol != "http/protobuf":
        return f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: use http/protobuf or grpc"
    return None


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` settings ask for traces (an endpoint, and not disabled)."""
    environ = os.environ if environ is None else environ
    if _env(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return False
    if _env(environ, "OTEL_TRACES_EXPORTER").lower() == "none":
        return False
    return bool(_env(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"))


def _protocol(environ: Mapping[str, str]) -> str:
    return (
        _env(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )


def start(environ: Mapping[str, str] | None = None) -> None:
    """Build this process's provider, exporter and batch processor from `OTEL_*`."""
    global active, _provider, _tracer
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    environ = os.environ if environ is None else environ
    named = _env(environ, "OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})
    exporter: Any
    if _protocol(environ) == "grpc":
        # An optional extra (`otlp-grpc`), so looked up by name.
        exporter = importlib.import_module(_GRPC_EXPORTER).OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), the queue and timeouts from
    # OTEL_BSP_*, the endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*.
    _provider = TracerProvider(
        resource=resource,
        id_generator=_request_trace_ids(),
        shutdown_on_exit=False,  # see stop()
    )
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = _provider.get_tracer("portcullis")
    _bind()
    active = True


def _request_trace_ids() -> Any:
    """Trace ids for new traces: the id the request already carries (`trace_id` on its
    RequestFacts, the one its access line names), so a log line and its trace meet."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    from .context import request_facts

    class RequestTraceIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            given = getattr(request_facts(), "trace_id", None)
            if isinstance(given, str) and len(given) == 32:
                with contextlib.suppress(ValueError):
                    number = int(given, 16)
                    if number:
                        return number
            return super().generate_trace_id()

    return RequestTraceIds()


def _bind() -> None:
    global _api
    from opentelemetry import context, propagate, trace

    _api = types.SimpleNamespace(
        extract=propagate.extract,
        attach=context.attach,
        detach=context.detach,
        set_span_in_context=trace.set_span_in_context,
        get_current_span=trace.get_current_span,
        SERVER=trace.SpanKind.SERVER,
        ERROR=trace.StatusCode.ERROR,
    )


async def stop(timeout: float) -> None:
    """Flush what is queued and stop the exporter, waiting at most `timeout` seconds.

    The SDK's flush and shutdown block until every queued batch was tried (each up to the
    exporter's timeout), so they run in a daemon thread the exit never waits for."""
    global active, _provider, _tracer
    provider, active, _provider, _tracer = _provider, False, None, None
    if provider is None:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def flush_and_shut() -> None:
        try:
            provider.force_flush(int(timeout * 1000))
            provider.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(finished)

    threading.Thread(target=flush_and_shut, name="portcullis-trace-flush", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, timeout)


class _Headers:
    """The propagator's view of ASGI headers (lower-case byte pairs)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        wanted = key.encode("latin-1")
        found = [bytes(v).decode("latin-1") for k, v in carrier if k == wanted]
        return found or None

    def keys(self, carrier: Any) -> list[str]:
        return [bytes(k).decode("latin-1") for k, _ in carrier]


_HEADERS = _Headers()


def request_started(scope: Mapping[str, Any], facts: RequestFacts, method: str, path: str) -> Any:
    """Open the request's server span, continuing an incoming W3C `traceparent` and
    `tracestate`, and make it current; hand the result to `request_finished`."""
    api = _api
    parent = None
    headers = scope.get("headers", ())
    for name, _ in headers:
        if name == b"traceparent":  # else no propagator has anything to continue
            parent = api.extract(headers, getter=_HEADERS)
            break
    method = method if method in _METHODS else "_OTHER"
    span = _tracer.start_span(
        method if method != "_OTHER" else "HTTP",
        context=parent,
        kind=api.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", ""),
            "client.address": facts.client_ip,
        },
    )
    return span, api.attach(api.set_span_in_context(span, parent))


def request_finished(handle: Any, method: str, route: str | None, status: int) -> None:
    """Name the span `METHOD route`, record the status, end it and restore the context."""
    span, token = handle
    _api.detach(token)
    if span.is_recording():
        if route is not None:
            span.set_attribute("http.route", route)
            name = method if method in _METHODS else "HTTP"
            span.update_name(f"{name} {route}")
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(_api.ERROR)
    span.end()


def tracer() -> Any:
    return _tracer


def trace_id() -> str | None:
    """The current span's trace id (32 lowercase hex), when tracing is on."""
    if not active:
        return None
    ctx = _api.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def recording_parent() -> bool:
    return bool(_api.get_current_span().is_recording())


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current request's span (a no-op outside a sampled request)."""
    if not active or not recording_parent():
        return _NULL
    return child(name, attributes)


@contextlib.contextmanager
def child(name: str, attributes: dict[str, Any], kind: Any = None) -> Iterator[Any]:
    from opentelemetry import trace

    with _tracer.start_as_current_span(
        name,
        kind=kind or trace.SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,  # an exception's text may quote a value
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(trace.StatusCode.ERROR)
            raise


def event(name: str, reason: str) -> None:
    """A security event on the request's span: its name and reason code, nothing else."""
    if not active:
        return
    current = _api.get_current_span()
    if current.is_recording():
        current.add_event(name, {"reason": reason})
