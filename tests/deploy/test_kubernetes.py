"""deploy/kubernetes/: every manifest is valid against the pinned Kubernetes version's
schemas (offline, strict: unknown fields are errors), and says what operators rely on."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from dotenv import dotenv_values

from tests.support.debian import kustomize

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.33"  # the oldest minor version the manifests promise to work on


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


ALL = {
    (path.name, index): doc
    for path in sorted(MANIFESTS.glob("*.yaml"))
    # monitoring.yaml holds Prometheus Operator resources (tests/observability checks them)
    if path.name not in ("kustomization.yaml", "monitoring.yaml")
    for index, doc in enumerate(documents(path))
}


def config() -> dict[str, str]:
    """The ConfigMap's data: kustomize generates it from config.env."""
    return {k: v or "" for k, v in dotenv_values(MANIFESTS / "config.env").items()}


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in ALL.values() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} manifests named {name}"
    return found[0]


@pytest.mark.parametrize("key", sorted(ALL), ids=lambda k: f"{k[0]}#{k[1]}")
def test_manifest_is_valid(key: tuple[str, int]) -> None:
    kubernetes_validate.validate(ALL[key], KUBERNETES, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(one("Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_placeholders() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert [g["name"] for g in kustomization["configMapGenerator"]] == ["portcullis-config"]
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == {name for name in present if not name.endswith(".example.yaml")}
    assert {d["metadata"]["namespace"] for d in ALL.values() if d["kind"] != "Namespace"} == {
        kustomization["namespace"]
    }


def pod_of(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = one(kind)["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_locked_down(kind: str) -> None:
    pod = pod_of(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/app/var", "/tmp"} <= mounts  # noqa: S108 - the only writable places


def test_probes_are_https_on_the_health_routes() -> None:
    container = pod_of("Deployment")["containers"][0]
    paths = {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["scheme"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": ("/healthz", "HTTPS"),
        "readinessProbe": ("/readyz", "HTTPS"),
        "livenessProbe": ("/healthz", "HTTPS"),
    }


def test_a_stopping_pod_has_time_to_leave_rotation_drain_and_finish() -> None:
    pod = pod_of("Deployment")
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    sleep = int(pre_stop[1])
    drain = int(config()["PORTCULLIS_DRAIN_SECONDS"])
    graceful = int(tomllib.loads((ROOT / "hypercorn.toml").read_text())["graceful_timeout"])
    readiness = pod["containers"][0]["readinessProbe"]
    # The readiness probe notices the drain well before it ends ...
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < drain
    # ... and the kubelet's SIGKILL comes only after sleep, drain and graceful stop.
    assert pod["terminationGracePeriodSeconds"] > sleep + drain + graceful


def test_one_slow_readiness_answer_does_not_take_a_pod_out() -> None:
    readiness = pod_of("Deployment")["containers"][0]["readinessProbe"]
    assert readiness["failureThreshold"] >= 2
    assert readiness["timeoutSeconds"] >= 2  # the service answers /readyz from a 1 s cache


def test_selectors_pick_the_servers_only() -> None:
    server = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    migrate = one("Job")["spec"]["template"]["metadata"]["labels"]

    def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for selector in (
        one("Service")["spec"]["selector"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Deployment")["spec"]["selector"]["matchLabels"],
    ):
        assert matches(selector, server) and not matches(selector, migrate)
    policy = one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    assert matches(policy, server) and matches(policy, migrate)  # both need the database
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    assert hpa["minReplicas"] > one("PodDisruptionBudget")["spec"]["minAvailable"]


def test_network_policy_admits_https_only_and_reaches_only_the_dependencies() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {8443}
    assert {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]} == {
        ("TCP", 5432),
        ("TCP", 6379),
        ("UDP", 53),
        ("TCP", 53),
    }


def test_each_pod_is_scraped_and_mounts_what_the_settings_name() -> None:
    template = one("Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/scheme"] == "https"
    assert annotations["prometheus.io/path"] == "/metrics"
    container = template["spec"]["containers"][0]
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    settings = config()
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert settings["PORTCULLIS_SIGNING_KEYS_FILE"].startswith(mounts["keys"] + "/")
    assert settings["PORTCULLIS_CERTFILE"].startswith(mounts["tls"] + "/")
    assert settings["PORTCULLIS_DATA_DIR"] == mounts["data"]
    assert not any("subPath" in m for m in container["volumeMounts"])  # updates must arrive
    secrets = {d["metadata"]["name"] for d in ALL.values() if d["kind"] == "Secret"}
    referenced = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    referenced |= {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    assert referenced == secrets
    assert one("Service")["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert settings["PORTCULLIS_ENV"] == "production"


def test_what_kustomize_renders_is_valid_and_names_the_configmap_by_hash() -> None:
    """`kubectl apply -k` applies kustomize's output, not the files: validate that, with the
    generated ConfigMap (its name carries a hash of config.env, so a change rolls the pods)
    and the references to it rewritten."""
    rendered = kustomize(MANIFESTS)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator resources: tests/observability checks them
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    name = config_map["metadata"]["name"]
    assert name.startswith("portcullis-config-") and name != "portcullis-config-"
    assert config_map["data"] == config()
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                refs = [
                    e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e
                ]
                assert refs == [name]
