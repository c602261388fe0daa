"""The Hypercorn patch package is tied to the exact upstream it was written against."""

from __future__ import annotations

import hashlib
import inspect
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from service.server import patches
from service.server.patches import PINNED, UPSTREAM, Replaced

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("replaced", UPSTREAM, ids=lambda r: r.name)
def test_each_replaced_upstream_function_is_the_one_the_patch_was_written_for(
    replaced: Replaced,
) -> None:
    source = inspect.getsource(replaced.original)
    assert hashlib.sha256(source.encode()).hexdigest() == replaced.sha256, (
        f"{replaced.name} changed upstream: re-read it and carry the change into "
        "service/server/patches (or drop the patch), then update its hash"
    )


def test_every_patch_is_installed_and_registered() -> None:
    from hypercorn.protocol.h2 import H2Protocol
    from hypercorn.protocol.h11 import H11Protocol

    patches.install()
    patches.install()  # idempotent
    installed = {
        "hypercorn.protocol.h11.H11Protocol.stream_send": H11Protocol.stream_send,
        "hypercorn.protocol.h2.H2Protocol._handle_events": H2Protocol._handle_events,
        "hypercorn.protocol.h2.H2Protocol._send_data": H2Protocol._send_data,
        "hypercorn.protocol.h2.H2Protocol._close_stream": H2Protocol._close_stream,
    }
    registered = {r.name: r.original for r in UPSTREAM}
    for name, function in installed.items():
        assert function.__module__.startswith("service.server.patches"), name
        assert function.portcullis_upstream is registered[name]  # type: ignore[attr-defined]


def test_hypercorn_is_pinned_exactly_to_the_patched_release() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"hypercorn[uvloop]=={PINNED}"' in pyproject
    assert version("hypercorn") == PINNED
    for lock in ("requirements.lock", "requirements-dev.lock"):
        assert f"\nhypercorn=={PINNED} " in (ROOT / lock).read_text(), lock


def test_another_hypercorn_is_refused_at_start_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(patches, "installed_version", lambda: "0.19.1")
    with pytest.raises(SystemExit) as exit_:
        patches.install()
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("portcullis: Hypercorn 0.19.1 is installed")
    assert PINNED in line


def test_the_worker_refuses_another_hypercorn_without_a_traceback(tmp_path: Path) -> None:
    """From the outside: the application module Hypercorn's workers import."""
    probe = (
        "import importlib.metadata as m; real = m.version; "
        "m.version = lambda name: '0.17.3' if name == 'hypercorn' else real(name); "
        "import service.asgi"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PORTCULLIS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("portcullis: Hypercorn 0.17.3 is installed")


def test_no_private_interpreter_or_h11_internals_in_the_service() -> None:
    for path in (ROOT / "service").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bctypes\b", text), path
        assert "h11._" not in text, path


def test_the_openssl_configuration_names_exactly_the_intermediate_groups() -> None:
    from service.server import tls

    lines = [line.split("#")[0].strip() for line in tls.OPENSSL_CONF.read_text().splitlines()]
    assert [line for line in lines if line.startswith("Groups")] == ["Groups = X25519:P-256:P-384"]
