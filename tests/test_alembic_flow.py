"""The schema-change flow as the README writes it, in the `make run` environment: no dev
tools, so ruff is missing. `alembic revision --autogenerate` must write the revision and
exit 0, formatting it only when ruff is there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tree(tmp_path: Path) -> Path:
    """A copy of what the flow reads (so the real versions folder is never written)."""
    tree = tmp_path / "repo"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for folder in ("service", "tools"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def _run(tree: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("ruff", ["missing", "installed"])
def test_autogenerate_as_the_readme_writes_it(tmp_path: Path, ruff: str) -> None:
    tree = _tree(tmp_path)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTCULLIS_DATA_DIR": str(tmp_path / "var"),
    }
    if ruff == "missing":  # shadow the installed ruff, as a run-only environment lacks it
        shadow = tmp_path / "shadow"
        shadow.mkdir()
        (shadow / "ruff.py").write_text("raise ImportError('no ruff here')\n")
        env["PYTHONPATH"] = str(shadow)
    migrated = _run(tree, env, "-m", "service", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    versions = tree / "service/store/alembic/versions"
    before = set(versions.glob("*.py"))
    r = _run(tree, env, "-m", "alembic", "revision", "--autogenerate", "-m", "what changes")
    assert r.returncode == 0, r.stdout + r.stderr
    (written,) = set(versions.glob("*.py")) - before
    assert "what changes" in written.read_text()
    if ruff == "missing":
        assert "ruff is not installed" in r.stderr
    else:
        assert "ruff is not installed" not in r.stderr
        check = _run(tree, env, "-m", "ruff", "format", "--check", str(written))
        assert check.returncode == 0, check.stdout
