"""The README's quick start, run as written against the real server: register, log
in, create and list a note, refresh, revoke; the tokens kept in shell variables."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, run_server

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.server
FIRST_LINE = "API=https://localhost:8443 CA=certs/ca.pem"


def quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(FIRST_LINE)]
    return str(block)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("quickstart")) as srv:
        yield srv


def test_the_quick_start_works_as_written(server: Server) -> None:
    bash, curl = shutil.which("bash"), shutil.which("curl")
    if bash is None or curl is None:
        pytest.skip("bash and curl are needed to run the README's commands")
    script = quick_start().replace(FIRST_LINE, f"API={server.url} CA={server.ca}", 1)
    r = subprocess.run(
        [bash, "-euo", "pipefail", "-c", script],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert '"status":"ok"' in out.replace(" ", "")
    assert out.count('"title":"first note"') == 2, out  # created, then listed
    assert '"username":"alice"' in out.replace(" ", "")
    assert out.endswith("{}401\n"), out  # revoked: 200 {} then the old access token's 401
