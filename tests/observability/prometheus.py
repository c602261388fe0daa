"""A real Prometheus from Debian's `prometheus` package for tests: installed on first use
(as root, with apt-get) or the test is skipped saying why; started on a free loopback port
with the project's rules at a shorter time scale."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.server import free_port

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+)([smh])")


def need(tool: str) -> str:
    """The path of `prometheus` or `promtool`, installing Debian's package when missing."""
    found = shutil.which(tool)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(f"{tool} is missing and cannot be installed here (Debian package prometheus)")
    done = subprocess.run(
        [apt, "install", "-y", "-q", "--no-install-recommends", "prometheus"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"apt-get install prometheus failed: {done.stderr[-500:]}")
    return found


def _scaled(duration: str, factor: int) -> str:
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(duration))
    return f"{max(1, seconds // factor)}s"


def scaled_rules(text: str, factor: int) -> str:
    """The rules with every range and `for` divided by `factor`: the same expressions and
    thresholds, seconds instead of minutes."""
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(
                r"\[(\d+[smh])\]", lambda m: f"[{_scaled(m.group(1), factor)}]", rule["expr"]
            )
            if "for" in rule:
                rule["for"] = _scaled(rule["for"], factor)
    return yaml.safe_dump(rules, sort_keys=False)


@dataclass
class Prometheus:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as answer:  # noqa: S310
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/query", query=expr)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/alerts")["alerts"])

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}


@contextmanager
def run_prometheus(
    folder: Path, *, target: str, ca: Path, rules: str, interval: str = "1s"
) -> Iterator[Prometheus]:
    binary = need("prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(rules)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(folder / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": "portcullis",
                "scheme": "https",
                "tls_config": {"ca_file": str(ca)},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
            try:
                if prometheus.query('up{job="portcullis"} == 1'):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus never scraped: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
