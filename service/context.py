"""Per-request state, in two parts that each travel one way.

Down: `RequestFacts` (request id, trace context, client address) is made by the ASGI
gate before the app runs and never changes. The gate sets it in a context variable;
tasks the app spawns inherit it, so every layer below reads it (log lines, problem
bodies, spans) and none writes it.

Back: `Outcome` is what the app tells the gate about the request it served (the matched
route template, the principal, the rate-limit decision behind the RateLimit fields).
The gate puts an empty one in the scope (`outcome_of`); only the request hooks
(`service.guard`) fill it, and the gate reads it once the answer starts.
"""

from __future__ import annotations

import contextvars
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestFacts:
    request_id: str
    # W3C trace context: the incoming `traceparent`'s trace id (32 lowercase hex) and
    # parent span id, or a new trace id and no parent. A tracer continues this trace.
    trace_id: str
    client_ip: str
    parent_span_id: str | None = None
    sampled: bool = False  # the caller's `sampled` trace flag


@dataclass(slots=True)
class Outcome:
    route: str | None = None
    principal: str | None = None
    # security.ratelimit.Decision (this module sits below security/ and cannot name it)
    ratelimit: Any = None


current_request: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "portcullis_request", default=None
)

OUTCOME = "portcullis.outcome"  # the scope key of the request's Outcome


def request_facts() -> RequestFacts | None:
    """The facts of the request being served (None outside a request)."""
    return current_request.get()


def outcome_of(scope: MutableMapping[str, Any]) -> Outcome | None:
    """The request's Outcome, from its ASGI scope (None when no gate made one)."""
    outcome: Outcome | None = scope.get(OUTCOME)
    return outcome
