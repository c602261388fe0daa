"""deploy/prometheus/: the rules pass `promtool check rules` and their unit tests, every
alert says what it means and links to its runbook, and the generated files are current."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import monitoring

from .prometheus import need, scaled_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "portcullis.rules.yaml"
TESTS = ROOT / "deploy" / "prometheus" / "tests"
OPERATIONS = ROOT / "docs" / "operations.md"


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    files = sorted(str(p) for p in TESTS.glob("*.yaml"))
    assert files
    done = promtool("test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names == fired == quiet


def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """A rule that can no longer fire (threshold raised a thousandfold) fails its test."""
    broken = RULES.read_text().replace(
        'sum by (job) (portcullis:logins:rate5m{outcome="failure"}) > 1',
        'sum by (job) (portcullis:logins:rate5m{outcome="failure"}) > 1000',
    )
    assert broken != RULES.read_text()
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "portcullis.rules.yaml").write_text(broken)
    (tmp_path / "prometheus" / "tests").mkdir()
    for path in TESTS.glob("*.yaml"):
        (tmp_path / "prometheus" / "tests" / path.name).write_text(path.read_text())
    done = promtool(
        "test", "rules", *(str(p) for p in (tmp_path / "prometheus" / "tests").glob("*.yaml"))
    )
    assert done.returncode != 0
    assert "PortcullisCredentialStuffing" in done.stdout + done.stderr


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: str(rule["alert"]))
def test_alert_explains_itself_and_links_its_runbook(rule: dict[str, Any]) -> None:
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert rule["labels"]["severity"] in {"warning", "critical"}
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == "docs/operations.md"
    assert anchor == rule["alert"].lower()
    headings = re.findall(r"^#{2,4} (.+)$", OPERATIONS.read_text(), re.MULTILINE)
    assert rule["alert"] in headings, f"docs/operations.md has no runbook section {rule['alert']}"


def test_the_shortened_rules_for_the_end_to_end_test_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(scaled_rules(RULES.read_text(), 10))
    assert "[30s]" in path.read_text() and "[5m]" not in path.read_text()
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_files_are_current() -> None:
    for path, text in monitoring.outputs().items():
        assert path.read_text() == text, f"{path.name} is stale: run make dashboard"


def test_kubernetes_rules_are_the_rules_file() -> None:
    rule, monitor = yaml.safe_load_all(monitoring.KUBERNETES.read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert monitor["kind"] == "PodMonitor"
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == (
        "https",
        "https",
        "/metrics",
    )
    deployment = next(
        d
        for d in yaml.safe_load_all(
            (ROOT / "deploy" / "kubernetes" / "deployment.yaml").read_text()
        )
        if d and d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert endpoint["port"] in ports
