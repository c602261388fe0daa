"""The OpenAPI document served at /openapi.json: built once, as bytes with an ETag."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

from quart import Quart


@dataclass(frozen=True)
class Document:
    body: bytes
    etag: str


def build_document(app: Quart) -> Document:
    """The document as bytes with a strong ETag."""
    schema = app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    body = json.dumps(schema, ensure_ascii=False, separators=(",", ":")).encode()
    return Document(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class LazyDocument:
    """The app's document, built on first use, in a worker thread (tens of milliseconds
    of CPU that would otherwise stall the event loop; bench/PROFILE.md); concurrent first
    requests wait for that one build. One per app: made by `ops.make_blueprint`, held by
    its route."""

    def __init__(self) -> None:
        self._document: Document | None = None
        self._lock = asyncio.Lock()

    async def get(self, app: Quart) -> Document:
        if self._document is None:
            async with self._lock:
                if self._document is None:
                    self._document = await asyncio.to_thread(build_document, app)
        return self._document
