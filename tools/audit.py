"""`make audit`: pip-audit against the locked dependency set, or a clear "skipped" when the
advisory service (PyPI's JSON API) cannot be reached from this machine."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-dev.lock"  # the runtime lock plus the dev tools
SERVICE = "https://pypi.org/pypi/{name}/{version}/json"


def first_pin(*, lock: Path) -> tuple[str, str]:
    match = re.search(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"audit: no pinned requirement in {lock}")
    return match.group(1), match.group(2)


def unreachable(*, name: str, version: str, timeout: float = 10) -> str | None:
    """Why the advisory service cannot answer for a locked release; None when it can."""
    url = SERVICE.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
            response.read(1)
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None


def main() -> int:
    name, version = first_pin(lock=LOCK)
    reason = unreachable(name=name, version=version)
    if reason is not None:
        sys.stdout.write(f"audit skipped: the advisory service is unreachable ({reason})\n")
        return 0
    command = [
        sys.executable, "-m", "pip_audit", "--strict", "--disable-pip", "--require-hashes",
        "--progress-spinner", "off", "-r", str(LOCK),
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode  # noqa: S603 - fixed argv


if __name__ == "__main__":
    sys.exit(main())
