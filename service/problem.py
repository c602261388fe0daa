"""problem+json bodies (RFC 9457), framework-free: the one renderer of an error body.

`service.api.problems` wraps these bodies in Quart responses; the ASGI middleware sends
them with `send_problem` before the app sees a request. Both name the request (its
`request_id` and `trace_id`) from the facts the gate set (`service.context`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from http import HTTPStatus
from typing import Any

from .context import request_facts

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://portcullis.dev/problems/"
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_CONTENT_TYPE = (b"content-type", PROBLEM_JSON.encode())


def problem_body(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
) -> bytes:
    """The RFC 9457 JSON body of an error answer."""
    facts = request_facts()
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + (code or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "request_id": facts.request_id if facts else None,
        "trace_id": facts.trace_id if facts else None,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return json.dumps(body, ensure_ascii=False).encode()


async def send_problem(
    send: Send, status: int, *, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole problem+json answer, as ASGI messages."""
    body = problem_body(status, detail=detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _CONTENT_TYPE,
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
