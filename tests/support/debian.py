"""Command-line tools the deploy and image tests need: found on PATH, or installed from
Debian (apt-get, as root) in the test's own setup; otherwise the test skips, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def debian_tool(name: str, package: str) -> str:
    """The path of `name`, installing Debian's `package` first when it is missing."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )
    apt = shutil.which("apt-get")
    if found is None and os.geteuid() == 0 and apt:
        subprocess.run(
            [apt, "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", package],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=900,
            check=False,
        )
        found = shutil.which(name) or next(
            (str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None
        )
    if found is None:
        pytest.skip(f"{name} is not installed and cannot be installed here (Debian {package})")
    return found


def kustomize(folder: Path) -> str:
    """`kubectl kustomize folder`: what `kubectl apply -k` would apply."""
    kubectl = debian_tool("kubectl", "kubernetes-client")
    return subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
