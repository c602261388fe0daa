"""`make dashboard`: the Grafana dashboard and the Kubernetes monitoring manifests, made
from code and committed.

- `deploy/grafana/portcullis.json`: the dashboard, built with grafana-foundation-sdk;
- `deploy/kubernetes/monitoring.yaml`: a `PrometheusRule` holding the groups of
  `deploy/prometheus/portcullis.rules.yaml` unchanged (one rules file, two ways to load it)
  and a `PodMonitor` scraping every Portcullis pod's `/metrics` over HTTPS.

`python -m tools.monitoring --check` exits 1 when a committed file is not what the code
and the rules file make (the test suite runs it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "portcullis.rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "portcullis.json"
KUBERNETES = ROOT / "deploy" / "kubernetes" / "monitoring.yaml"
NAMESPACE = "portcullis"
SELECTOR = 'job=~"$job"'
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # or "stat": one number per series


def _rate(metric: str, by: str, matchers: str = "") -> str:
    selector = f"{SELECTOR},{matchers}" if matchers else SELECTOR
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


def _quantile(q: float) -> str:
    bucket = f"portcullis_http_request_duration_seconds_bucket{{{SELECTOR}}}"
    return f"histogram_quantile({q}, sum by (route, le) (rate({bucket}[$__rate_interval])))"


TRAFFIC = (
    Chart(
        "Requests by route",
        "Completed requests per second, by route template.",
        "reqps",
        (Query(_rate("portcullis_http_requests_total", "route"), "{{route}}"),),
    ),
    Chart(
        "Errors by route and status",
        "4xx and 5xx answers per second.",
        "reqps",
        (
            Query(
                _rate("portcullis_http_requests_total", "route, status", 'status=~"4..|5.."'),
                "{{route}} {{status}}",
            ),
        ),
    ),
    Chart(
        "5xx ratio",
        "Share of answers that are server errors (alert PortcullisHigh5xxRatio above 2%).",
        "percentunit",
        (
            Query(
                f'(sum(rate(portcullis_http_requests_total{{{SELECTOR},status=~"5.."}}'
                "[$__rate_interval])) or vector(0))"
                f" / sum(rate(portcullis_http_requests_total{{{SELECTOR}}}[$__rate_interval]))",
                "5xx",
            ),
        ),
    ),
    Chart("Latency p50 by route", "Median latency.", "s", (Query(_quantile(0.5), "{{route}}"),)),
    Chart(
        "Latency p99 by route",
        "99th percentile latency (alert PortcullisHighLatency above 1 s).",
        "s",
        (Query(_quantile(0.99), "{{route}}"),),
    ),
    Chart(
        "In flight against the cap",
        "Requests being served, and PORTCULLIS_MAX_INFLIGHT summed over the live workers.",
        "short",
        (
            Query(
                f"sum by (instance) (portcullis_http_requests_in_flight{{{SELECTOR}}})",
                "{{instance}} in flight",
            ),
            Query(
                f"sum by (instance) (portcullis_http_requests_in_flight_limit{{{SELECTOR}}})",
                "{{instance}} cap",
            ),
        ),
    ),
)
SECURITY = (
    Chart(
        "Auth failures by reason",
        "Rejected bearer tokens per second (docs/operations.md lists the reasons).",
        "reqps",
        (Query(_rate("portcullis_auth_failures_total", "reason"), "{{reason}}"),),
    ),
    Chart(
        "Logins by outcome",
        "Token-endpoint authentications per second.",
        "reqps",
        (Query(_rate("portcullis_logins_total", "outcome"), "{{outcome}}"),),
    ),
    Chart(
        "Rate-limit rejections by policy",
        "429 answers per second, by policy.",
        "reqps",
        (Query(_rate("portcullis_ratelimit_rejections_total", "policy"), "{{policy}}"),),
    ),
    Chart(
        "Blocks and refresh-token reuse",
        "Addresses blocked automatically, and spent refresh tokens presented again.",
        "short",
        (
            Query(
                f"sum(increase(portcullis_client_blocks_total{{{SELECTOR}}}[$__rate_interval]))",
                "blocks",
            ),
            Query(
                "sum(increase(portcullis_refresh_token_reuse_total"
                f"{{{SELECTOR}}}[$__rate_interval]))",
                "refresh-token reuse",
            ),
        ),
    ),
)
DEPENDENCIES = (
    Chart(
        "Dependency up",
        "1 when every instance reached the dependency at its last check.",
        "short",
        (
            Query(
                f"min by (dependency) (portcullis_dependency_up{{{SELECTOR}}})",
                "{{dependency}}",
            ),
        ),
        kind="stat",
    ),
    Chart(
        "Key-set mismatch",
        "1 while processes verify with different signing key sets.",
        "short",
        (Query(f"max by (instance) (portcullis_key_set_mismatch{{{SELECTOR}}})", "{{instance}}"),),
        kind="stat",
    ),
)
ROWS = (("Traffic", TRAFFIC), ("Security", SECURITY), ("Dependencies", DEPENDENCIES))


def _panel(chart: Chart, panel_id: int) -> Any:
    panel: Any = timeseries.Panel() if chart.kind == "timeseries" else stat.Panel()
    panel = (
        panel.id(panel_id)
        .title(chart.title)
        .description(chart.description)
        .unit(chart.unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(12 if chart.kind == "timeseries" else 6)
    )
    for index, query in enumerate(chart.queries):
        panel = panel.with_target(
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
    return panel


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    builder = (
        gd.Dashboard("Portcullis")
        .uid("portcullis")
        .description("Traffic, security and dependencies of Portcullis (generated: make dashboard)")
        .tags(["portcullis"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            gd.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query("label_values(portcullis_http_requests_in_flight, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".+")
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
    )
    panel_id = 0
    for title, charts in ROWS:
        panel_id += 1
        builder = builder.with_row(gd.Row(title).id(panel_id))
        for chart in charts:
            panel_id += 1
            builder = builder.with_panel(_panel(chart, panel_id))
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return model


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def panel_queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel of a dashboard model."""
    found: list[tuple[str, str]] = []
    for panel in model.get("panels", []):
        for target in panel.get("targets", []) or []:
            if target.get("expr"):
                found.append((panel["title"], target["expr"]))
    return found


def kubernetes_text(rules_text: str | None = None) -> str:
    """The PrometheusRule (the rules file's groups) and the PodMonitor, as one YAML stream."""
    rules = yaml.safe_load(rules_text if rules_text is not None else RULES.read_text())
    labels = {"app.kubernetes.io/name": "portcullis", "app.kubernetes.io/component": "monitoring"}
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "portcullis", "namespace": NAMESPACE, "labels": labels},
        "spec": {"groups": rules["groups"]},
    }
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "portcullis", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "portcullis",
                    "app.kubernetes.io/component": "server",
                }
            },
            # The metrics are per pod (all of its workers): scrape pods, not the Service.
            "podMetricsEndpoints": [
                {
                    "port": "https",
                    "scheme": "https",
                    "path": "/metrics",
                    "interval": "15s",
                    # The pod's certificate names the public host, not the pod address:
                    # verify it against the CA that signed it (a Secret you provide).
                    "tlsConfig": {
                        "ca": {"secret": {"name": "portcullis-metrics-ca", "key": "ca.crt"}},
                        "serverName": "portcullis.portcullis.svc",
                    },
                }
            ],
        },
    }
    head = (
        "# Generated by `make dashboard` (tools/monitoring.py) from\n"
        "# deploy/prometheus/portcullis.rules.yaml: edit that file, not this one.\n"
        "# Needs the Prometheus Operator's CRDs (kube-prometheus-stack); the Prometheus must\n"
        "# select these by label, and PORTCULLIS_METRICS_ALLOW must cover its pod network.\n"
    )
    body = yaml.safe_dump_all([rule, monitor], sort_keys=False, width=100, allow_unicode=True)
    return head + body


def outputs() -> dict[Path, str]:
    return {DASHBOARD: dashboard_text(), KUBERNETES: kubernetes_text()}


def main(argv: list[str]) -> int:
    stale = [
        path for path, text in outputs().items() if not path.exists() or path.read_text() != text
    ]
    if "--check" in argv:
        for path in stale:
            sys.stderr.write(f"{path.relative_to(ROOT)} is not current: run make dashboard\n")
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
