"""The API suite runs against SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import PG_URL


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not PG_URL,
                reason="PORTCULLIS_TEST_DATABASE_URL is not set (no PostgreSQL to test against)",
            ),
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
