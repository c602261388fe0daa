"""What a new user gets from the repository: documented settings, an example environment,
a lock the image and CI install from, a container that keeps its state and checks its
health, a Makefile that works on any machine, a licence and a versioned command."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

from service.cli_support import variable
from service.config import Settings
from tools import lockfile

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def documented_settings() -> dict[str, tuple[str, str]]:
    """docs/configuration.md's table: variable -> (default cell, meaning cell)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        match = re.match(r"^\| `(PORTCULLIS_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice"
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def rendered_default(value: Any) -> str | None:
    """How the table writes a field's default; None where it describes it in words."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(str(v) for v in value)}`" if value else "empty"
    return f"`{value}`"


def test_every_setting_is_documented_with_its_default() -> None:
    rows = documented_settings()
    fields = {variable(name): info for name, info in Settings.model_fields.items()}
    assert set(rows) == set(fields), (
        f"undocumented: {sorted(set(fields) - set(rows))}; "
        f"documented but not settings: {sorted(set(rows) - set(fields))}"
    )
    for name, info in fields.items():
        default_cell, meaning = rows[name]
        assert meaning.strip(), f"{name} has no meaning"
        expected = rendered_default(info.get_default(call_default_factory=True))
        if expected is None:
            assert default_cell.startswith("unset"), name
        else:
            assert default_cell == expected, f"{name}: documented {default_cell}, is {expected}"


def test_documentation_stands_alone() -> None:
    for path in (ROOT / "docs" / "configuration.md", ROOT / ".env.example"):
        assert "shared/" not in path.read_text() and "CONTRACT" not in path.read_text()


def test_env_example_names_only_real_settings_with_valid_values(tmp_path: Path) -> None:
    text = (ROOT / ".env.example").read_text()
    uncommented = re.sub(r"(?m)^# (PORTCULLIS_)", r"\1", text)
    values = dotenv_values(stream=io.StringIO(uncommented))
    known = {variable(name) for name in Settings.model_fields}
    assert set(values) <= known, f"not settings: {sorted(set(values) - known)}"
    assert set(values) == known, f"missing from .env.example: {sorted(known - set(values))}"
    # every example value is accepted, as a .env file, exactly as the service reads it
    env_file = tmp_path / ".env"
    env_file.write_text(uncommented)
    Settings(_env_file=env_file)
    active = Settings(_env_file=ROOT / ".env.example")
    assert active.env == "development"


def test_lock_files_are_fresh_and_staleness_is_detected(tmp_path: Path) -> None:
    assert lockfile.stale_locks(root=ROOT) == [], "the lock is stale: run `make lock`"
    for name in ("pyproject.toml", *lockfile.LOCKS):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"mypy>=', '"zxcvbn>=4.4",\n  "mypy>='))
    assert lockfile.stale_locks(root=tmp_path) == list(lockfile.LOCKS)
    check = subprocess.run(
        [sys.executable, "-m", "tools.lockfile", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def locked(path: Path) -> dict[str, list[tuple[Version, str]]]:
    """name -> [(version, environment marker)] of a lock file; every pin carries hashes."""
    pins: dict[str, list[tuple[Version, str]]] = {}
    for block in re.split(r"\n(?=[a-z0-9])", path.read_text()):
        match = re.match(r"^([a-z0-9._-]+)==([^\s;\\]+)(?: ; ([^\\]+))?", block)
        if match:
            assert "--hash=sha256:" in block, f"{match.group(1)} has no hash"
            pins.setdefault(match.group(1), []).append(
                (Version(match.group(2)), (match.group(3) or "").strip())
            )
    return pins


def test_lock_pins_respect_the_security_floors_on_every_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    # the last release with a known advisory (see pyproject.toml) is refused
    vulnerable = {"authlib": "1.6.11", "h11": "0.15.0", "h2": "4.2.0", "cryptography": "42.0.3"}
    for name, version in [*vulnerable.items(), ("authlib", "1.7.0"), ("cryptography", "44.0.0")]:
        assert not requirements[name].specifier.contains(version), (name, version)
    assert requirements["quart"].specifier.contains("0.23.1")  # the current release
    pins = locked(ROOT / "requirements.lock")
    for name, version in vulnerable.items():
        assert all(pinned > Version(version) for pinned, _ in pins[name]), name
    # Python 3.11, 3.12 and 3.13 each get exactly one version of every locked package
    for python in ("3.11.0", "3.12.0", "3.13.0"):
        environment = {"python_full_version": python, "python_version": python[:4]}
        for name, versions in pins.items():
            chosen = [v for v, m in versions if not m or Marker(m).evaluate(environment)]
            assert len(chosen) <= 1, (python, name, chosen)
        assert all(
            any(not m or Marker(m).evaluate(environment) for _, m in pins[name])
            for name in requirements
        ), python


def dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a pattern matching a
    folder excludes everything under it; `*` stays within one path segment."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        for token in re.split(r"(\*\*|\*|\?)", pattern.strip("/")):
            out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        rx = regex(raw.removeprefix("!"))
        if any(rx.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_secrets_and_state_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/config",
        ".env",
        ".env.production",
        "var/portcullis.db",
        "var/keys/jwks.json",
        "certs/ca-key.pem",
        "certs/server-key.pem",
        "service/__pycache__/app.cpython-311.pyc",
    ):
        assert dockerignored(patterns, path), path
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert (ROOT / source).exists(), source
            assert not dockerignored(patterns, source), f"{source} is copied but ignored"


def test_dockerfile_installs_from_the_lock_keeps_state_and_checks_health() -> None:
    text = (ROOT / "Dockerfile").read_text()
    instructions = [
        re.sub(r"\s*\\\n\s*", " ", block).strip()
        for block in re.split(r"\n(?=[A-Z]+ )", re.sub(r"(?m)^#.*\n", "", text))
    ]
    runs = [i for i in instructions if i.startswith("RUN ")]
    installs = [r for r in runs if "pip install" in r]
    assert any("--require-hashes -r requirements.lock" in r for r in installs)
    assert any("--require-hashes -r requirements-build.lock" in r for r in installs)
    # the only other install is the project's wheel, without resolving anything, built by
    # the hash-checked backend (build isolation would fetch an unpinned setuptools)
    assert all("--require-hashes -r" in r or "--no-deps --no-index" in r for r in installs)
    assert all("--no-build-isolation" in r for r in runs if "pip wheel" in r)
    assert re.search(r"^ARG PYTHON_IMAGE=\S+@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    assert "COPY requirements.lock" in text
    assert re.search(r"^VOLUME \[?\"?/app/var\"?\]?$", text, re.MULTILINE)
    assert re.search(r"^USER (?!root|0\b)\S+$", text, re.MULTILINE)
    health = next(i for i in instructions if i.startswith("HEALTHCHECK "))
    assert "https://127.0.0.1:8443/healthz" in health and "socket" not in health
    cmd = next(i for i in instructions if i.startswith("CMD "))
    assert '"portcullis", "serve"' in cmd
    # state written before VOLUME is kept; the folder must belong to the unprivileged user
    assert text.index("chown portcullis /app/var") < text.index("VOLUME /app/var")


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [str(MAKE), "-f", str(ROOT / "Makefile"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_make
def test_make_run_takes_host_and_port() -> None:
    result = make("-n", "run", "HOST=0.0.0.0", "PORT=9443", "HTTP_PORT=9080")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.replace("\\\n", " ").splitlines()
    serve = " ".join([line for line in commands if " serve " in line][-1].split())
    assert serve.endswith("--bind 0.0.0.0:9443 --insecure-bind 0.0.0.0:9080"), serve
    default = make("-n", "run").stdout.replace("\\\n", " ")
    assert "--bind 127.0.0.1:8443 --insecure-bind 127.0.0.1:8080" in " ".join(default.split())


@needs_make
def test_make_run_fails_loudly_on_bad_configuration(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PORTCULLIS_DATA_DIR": str(tmp_path),
        "PORTCULLIS_LOG_LEVEL": "chatty",
    }
    result = subprocess.run(
        [str(MAKE), "-o", ".venv/.run-installed", "-o", "certs/server.pem", "run", "PORT=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "portcullis: invalid configuration: PORTCULLIS_LOG_LEVEL: " in result.stderr
    assert "Traceback" not in result.stderr


@needs_make
def test_python_probe_is_silent_with_a_pyenv_shim_of_a_missing_version(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.13"
    shim.write_text(
        '#!/bin/sh\necho "pyenv: python3.13: command not found" >&2\n'
        "echo \"The 'python3.13' command exists in these Python versions:\" >&2\nexit 127\n"
    )
    shim.chmod(0o755)
    (shims / "python3.12").symlink_to(sys.executable)
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    env = {**os.environ, "PATH": f"{shims}:/usr/bin:/bin"}
    result = subprocess.run(
        [str(MAKE), "-n", "-f", str(ROOT / "Makefile"), ".venv/bin/python"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "command not found" not in result.stderr + result.stdout
    assert "python3.12 -m venv .venv" in result.stdout


def test_licence_and_version() -> None:
    assert "Permission is hereby granted" in (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    result = subprocess.run(
        [str(BIN / "portcullis"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"portcullis {project['version']}"
