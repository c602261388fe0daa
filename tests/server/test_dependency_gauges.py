"""A freshly started server reports its healthy database as up from the first scrape,
summed over its worker processes: an alert on `portcullis_dependency_up` does not fire
at every deploy."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.metrics import value
from tests.support.server import run_server

pytestmark = pytest.mark.server


def test_the_database_gauge_reads_1_from_the_first_scrape(tmp_path: Path) -> None:
    with run_server(tmp_path, workers=2) as server:
        started = time.monotonic()
        with httpx.Client(verify=server.ssl_context(), base_url=server.url) as c:
            while True:  # the listener is open; the first scrape a worker can answer
                try:
                    text = c.get("/metrics").text
                    break
                except httpx.TransportError:
                    assert time.monotonic() - started < 30
                    time.sleep(0.05)
    assert value(text, "portcullis_dependency_up", dependency="database") == 1
