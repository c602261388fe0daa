"""The 1000-stream bound of an HTTP/2 connection is a graceful GOAWAY (RFC 9113 §6.8):
every stream the server started is answered, then the connection closes, and a client
carries on on a new one. curl (nghttp2) plays the client: it keeps 90 streams in flight,
so many are running when the bound is reached."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, run_server

CURL = shutil.which("curl")
HTTP2 = (
    CURL is not None
    and "HTTP2"
    in subprocess.run([CURL, "--version"], capture_output=True, text=True, check=False).stdout
)
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not HTTP2, reason="curl with HTTP/2 (nghttp2) is not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("goaway")) as srv:
        yield srv


def test_streams_in_flight_at_the_bound_are_answered(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "urls.txt"
    config.write_text(
        "".join(f'url = "{server.url}/healthz?n={n}"\noutput = "/dev/null"\n' for n in range(1500))
    )
    assert CURL is not None
    done = subprocess.run(
        [
            CURL,
            "--http2",
            "--cacert",
            str(server.ca),
            "--silent",
            "--show-error",
            "--parallel",
            "--parallel-max",
            "90",
            "--write-out",
            "%{http_code} %{num_connects}\n",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.split()
    codes = Counter(lines[0::2])
    assert done.returncode == 0, done.stderr[-500:]
    assert codes == {"200": 1500}, (codes, done.stderr[-500:])
    assert sum(int(n) for n in lines[1::2]) >= 2  # the bound held: a second connection
