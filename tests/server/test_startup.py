"""Start-up failures under the real server: non-zero exit, one line naming the culprit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.devcerts import make_dev_certs
from tests.support.server import ROOT, free_port, run_server

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent


def start(
    tmp: Path, *args: str, command: str = "portcullis", workers: int = 1, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the server until it exits (it must, on these failures) with a bad environment."""
    certs = tmp / "certs"
    if not (certs / "server.pem").exists():
        make_dev_certs(certs)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(tmp / "var"),
        **env,
    }
    hypercorn_args = [
        "--config",
        str(ROOT / "hypercorn.toml"),
        "--bind",
        f"127.0.0.1:{free_port()}",
        "--insecure-bind",
        f"127.0.0.1:{free_port()}",
        "--certfile",
        str(certs / "server.pem"),
        "--keyfile",
        str(certs / "server-key.pem"),
        "--workers",
        str(workers),
        *args,
    ]
    if command == "portcullis":
        argv = [str(BIN / "portcullis"), "serve", *hypercorn_args]
    else:
        argv = [str(BIN / "hypercorn"), *hypercorn_args, "service.asgi:app"]
    return subprocess.run(
        argv, env=environment, cwd=tmp, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_unsafe_production_settings_exit_2_naming_every_variable(
    tmp_path: Path, workers: int
) -> None:
    result = start(
        tmp_path,
        workers=workers,
        PORTCULLIS_ENV="PRODUCTION",
        PORTCULLIS_DEBUG="true",
        PORTCULLIS_CERTFILE=str(tmp_path / "certs" / "server.pem"),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    # every production problem at once, once (the master checks before any worker starts)
    for variable in ("PORTCULLIS_DEBUG", "PORTCULLIS_ISSUER", "PORTCULLIS_CERTFILE"):
        assert sum(variable in line for line in lines) == 1, result.stderr
    assert all(line.startswith("portcullis: invalid configuration: ") for line in lines)


def test_missing_certificate_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "fullchain.pem"
    result = start(tmp_path, "--certfile", str(missing))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"portcullis: cannot read the TLS certificate {missing} (Hypercorn certfile, "
        "--certfile): No such file or directory"
    )


def test_key_that_does_not_match_the_certificate_is_named(tmp_path: Path) -> None:
    make_dev_certs(tmp_path / "certs")
    wrong = tmp_path / "certs" / "ca-key.pem"
    result = start(tmp_path, "--keyfile", str(wrong))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(wrong) in result.stderr and "cannot load the TLS certificate" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_cannot_start_makes_the_server_exit_non_zero(
    tmp_path: Path, workers: int
) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text("{not json")
    result = start(tmp_path, workers=workers, PORTCULLIS_SIGNING_KEYS_FILE=str(keys))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # One clear line naming the file and the variable. With several workers each may print
    # it before the master stops the others (how many get there is a race): the same line.
    (line,) = set(result.stderr.splitlines())
    assert line.startswith(f"portcullis: cannot start: signing key file {keys} ")
    assert "(PORTCULLIS_SIGNING_KEYS_FILE)" in line


def test_unusable_data_dir_is_named(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = start(tmp_path, PORTCULLIS_DATA_DIR=str(not_a_folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"portcullis: cannot start: PORTCULLIS_DATA_DIR: cannot use {not_a_folder}: "
        "it is not a folder"
    )


def test_plain_hypercorn_prints_the_problem_without_a_traceback(tmp_path: Path) -> None:
    """`hypercorn ... service.asgi:app` still names the problem in one line per worker; its
    exit status is Hypercorn's (0 here: pgjones/hypercorn#269), which is why `make run`
    and the image use `portcullis serve`. When this starts failing on the exit status,
    Hypercorn is fixed and the exit-status wrapper (service/server/patches/lifecycle.py) can go."""
    assert shutil.which("hypercorn", path=str(BIN))
    result = start(tmp_path, command="hypercorn", workers=1, PORTCULLIS_LOG_LEVEL="loud")
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(
        "portcullis: invalid configuration: PORTCULLIS_LOG_LEVEL: "
    )
    assert result.returncode == 0  # Hypercorn's bug, worked around in `portcullis serve`


def test_the_image_health_check_passes_against_the_real_server(tmp_path: Path) -> None:
    """The Dockerfile's HEALTHCHECK command, pointed at a live server, then at nothing."""
    code = re.search(r'CMD \["python", "-c", "(.+)"\]\n', (ROOT / "Dockerfile").read_text())
    assert code is not None and "https://127.0.0.1:8443/healthz" in code.group(1)

    def check(port: int) -> int:
        probe = code.group(1).replace(":8443/", f":{port}/")
        return subprocess.run([sys.executable, "-c", probe], timeout=30, check=False).returncode

    with run_server(tmp_path, env={"PORTCULLIS_ISSUER": "https://api.example.com"}) as srv:
        assert check(srv.port) == 0
    assert check(srv.port) != 0  # stopped: the check fails
