"""Tracing in a serving worker: started after the worker starts, flushed when it stops,
and client spans for the database and Redis calls of a traced request (service/tracing.py).

Installed only when tracing is on (`install`): SQLAlchemy's cursor events give a
span per SQL statement (the text holds bound-parameter markers, never values), the SQLite
reader's reads are wrapped on the instance, and a Redis client's `execute_command` is
wrapped on the instance, naming only the command. A call outside a sampled request makes
no span.
"""

from __future__ import annotations

from typing import Any

from . import tracing
from .tracing import child, recording_parent


def install(app: Any, services: Any, drain_seconds: float) -> None:
    """Start tracing in each serving worker of `app` when the `OTEL_*` settings ask for it."""
    if not tracing.enabled():
        return
    problem = tracing.configuration_problem()
    if problem is not None:
        tracing.log.error("tracing.off: %s", problem)
        return

    async def start_tracing() -> None:
        try:
            tracing.start()
        except Exception as exc:  # an OTEL_* value the SDK refuses: serve untraced, say so
            tracing.log.error("tracing.off: %s", exc)
            return
        instrument_database(services.db)
        if services.redis is not None:
            instrument_redis(services.redis)

    async def stop_tracing() -> None:
        await tracing.stop(min(drain_seconds, tracing.MAX_FLUSH_SECONDS))

    app.before_serving(start_tracing)
    app.after_serving(stop_tracing)


def instrument_database(db: Any) -> None:
    """A client span per SQL statement of `db` (its engine, and its SQLite reader)."""
    from opentelemetry import trace
    from sqlalchemy import event as sa_event

    engine = db.engine.sync_engine
    if getattr(engine, "_portcullis_traced", False):
        return
    engine._portcullis_traced = True
    system = {"postgresql": "postgresql", "sqlite": "sqlite"}.get(db.dialect, db.dialect)

    def attributes(statement: str) -> dict[str, Any]:
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        return {
            "db.system.name": system,
            "db.operation.name": operation,
            "db.query.text": statement,
        }

    def before(_c: Any, _cur: Any, statement: str, _p: Any, ctx: Any, _many: bool) -> None:
        if tracing.active and recording_parent():
            ctx._portcullis_span = tracing.tracer().start_span(
                attributes(statement)["db.operation.name"] or system,
                kind=trace.SpanKind.CLIENT,
                attributes=attributes(statement),
            )

    def after(_c: Any, _cur: Any, _s: str, _p: Any, ctx: Any, _many: bool) -> None:
        current = getattr(ctx, "_portcullis_span", None)
        if current is not None:
            ctx._portcullis_span = None
            current.end()

    def failed(exception_context: Any) -> None:
        ctx = exception_context.execution_context
        current = getattr(ctx, "_portcullis_span", None) if ctx is not None else None
        if current is not None:
            ctx._portcullis_span = None
            current.set_attribute("error.type", type(exception_context.original_exception).__name__)
            current.set_status(trace.StatusCode.ERROR)
            current.end()

    sa_event.listen(engine, "before_cursor_execute", before)
    sa_event.listen(engine, "after_cursor_execute", after)
    sa_event.listen(engine, "handle_error", failed)
    reader = getattr(db, "reader", None)
    if reader is not None:  # SQLite reads that skip the engine (store/sqlite_reader.py)
        fetch = reader.fetch

        async def traced_fetch(compiled: Any, params: Any) -> Any:
            if not tracing.active or not recording_parent():
                return await fetch(compiled, params)
            sql = str(getattr(compiled, "sql", "SELECT"))
            with child("SELECT", attributes(sql), trace.SpanKind.CLIENT):
                return await fetch(compiled, params)

        reader.fetch = traced_fetch


def instrument_redis(client: Any) -> None:
    """A client span per Redis command of `client`, named by the command, without its
    arguments (keys name clients; values may be anything)."""
    from opentelemetry import trace

    if getattr(client, "_portcullis_traced", False):
        return
    client._portcullis_traced = True
    execute = client.execute_command

    async def traced(*args: Any, **options: Any) -> Any:
        if not tracing.active or not recording_parent():
            return await execute(*args, **options)
        command = str(args[0]).upper() if args else "redis"
        with child(
            command,
            {"db.system.name": "redis", "db.operation.name": command},
            trace.SpanKind.CLIENT,
        ):
            return await execute(*args, **options)

    client.execute_command = traced
