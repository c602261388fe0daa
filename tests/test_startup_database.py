"""An unreachable database at start-up: one log line naming PORTCULLIS_DATABASE_URL
(never its password), retried with an exponential back-off rather than at every poll."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service import create_app
from tests.conftest import client_for, svc_of

UNREACHABLE = "postgresql+asyncpg://portcullis:hunter2-secret@127.0.0.1:9/portcullis"


def failures(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [line for line in lines if line["event"] == "database.migrate_failed"]


async def test_unreachable_database_is_one_line_with_back_off(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings_factory(database_url=UNREACHABLE))
    svc = svc_of(app)
    svc.bus.poll_seconds = 3600.0  # the test drives the retries itself
    async with app.test_app(), client_for(app) as client:
        assert (await client.get("/readyz")).status_code == 503
        for _ in range(20):  # twenty polls in a row: none of them tries again yet
            await svc.health.ensure_migrated()
        out = capsys.readouterr()
        (first,) = failures(out.out)
        assert first["level"] == "ERROR" and first["setting"] == "PORTCULLIS_DATABASE_URL"
        assert first["database"].startswith("postgresql+asyncpg://portcullis:")
        assert first["database"].endswith("@127.0.0.1:9/portcullis")
        assert "hunter2" not in out.out + out.err and "Traceback" not in out.out + out.err
        delays = [first["retry_seconds"]]
        for _ in range(9):
            svc.health._retry_at = 0.0  # the back-off has passed
            await svc.health.ensure_migrated()
            (line,) = failures(capsys.readouterr().out)
            delays.append(line["retry_seconds"])
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
