"""A serving worker freezes its start-up heap (service/asgi.py): full collections then
skip the libraries' long-lived objects. Measured by `make bench`: without it, collections
triggered on the request path cost /v1/users/me about a seventh of its throughput and
most of its p99."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, gc, json
import service.asgi as worker
hooks = [f.__name__ for f in worker.app.before_serving_funcs]
before = gc.get_freeze_count()

async def serve_once():
    async with worker.app.test_app():  # runs the before-serving hooks, in order
        return gc.get_freeze_count()

during = asyncio.run(serve_once())
print(json.dumps({"hooks": hooks, "before": before, "during": during}))
"""


def test_the_worker_freezes_its_heap_after_starting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"PATH": "/usr/bin:/bin", "PORTCULLIS_DATA_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["hooks"][-1] == "freeze_startup_heap"  # after Services.start
    assert facts["before"] == 0
    assert facts["during"] > 10_000  # the libraries' objects, frozen
