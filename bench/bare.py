"""The reference point of `make bench`: a bare Quart app, served by the project's own
`hypercorn.toml` from the same venv, answering what `/healthz` answers."""

from __future__ import annotations

from quart import Quart

app = Quart(__name__)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
