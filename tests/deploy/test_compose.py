"""deploy/compose.yaml parses and wires PostgreSQL, Redis, the one-shot migration, three
locked-down replicas and HAProxy with the same config file the scale-out test runs."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REPLICAS = ("replica1", "replica2", "replica3")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_has_the_services() -> None:
    assert set(compose()["services"]) == {"postgres", "redis", "migrate", *REPLICAS, "haproxy"}


def test_replicas_start_after_the_migration_has_succeeded() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["python", "-m", "service", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in REPLICAS:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"


def test_replicas_share_settings_and_are_locked_down() -> None:
    services = compose()["services"]
    environments = [services[name]["environment"] for name in REPLICAS]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    assert env["PORTCULLIS_ENV"] == "production"
    assert env["PORTCULLIS_DATABASE_URL"].startswith("postgresql://")
    assert env["PORTCULLIS_REDIS_URL"].startswith("redis://redis:")
    for name in (*REPLICAS, "migrate"):
        service = services[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert not service["user"].startswith("0")
    # The shared key file comes from a mounted directory (a rotation replaces the file).
    keys_dir = env["PORTCULLIS_SIGNING_KEYS_FILE"].rsplit("/", 1)[0]
    assert any(v.split(":")[1] == keys_dir for v in services["replica1"]["volumes"])


def test_replicas_trust_exactly_the_balancer() -> None:
    services = compose()["services"]
    balancer = ipaddress.ip_address(services["haproxy"]["networks"]["edge"]["ipv4_address"])
    trusted = [
        ipaddress.ip_network(n)
        for n in services["replica1"]["environment"]["PORTCULLIS_TRUSTED_PROXIES"].split(",")
    ]
    assert trusted == [ipaddress.ip_network(f"{balancer}/32")]
    subnet = compose()["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert balancer in ipaddress.ip_network(subnet)
    assert compose()["networks"]["data"]["internal"] is True
    for name in ("postgres", "redis"):
        assert services[name]["networks"] == ["data"] and "ports" not in services[name]


def test_haproxy_runs_the_repository_config_against_the_three_replicas() -> None:
    haproxy = compose()["services"]["haproxy"]
    assert "./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in haproxy["volumes"]
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = re.findall(r'^\s*server (\S+) "\$\{(PORTCULLIS_REPLICA_\d)-', config, re.M)
    env = haproxy["environment"]
    assert {name for name, _ in servers} == set(REPLICAS)
    assert {env[var] for _, var in servers} == {f"{name}:8443" for name in REPLICAS}
    assert set(haproxy["depends_on"]) == set(REPLICAS)


def test_replicas_serve_tls_from_the_mounted_certificate_and_stop_gracefully() -> None:
    replica = compose()["services"]["replica1"]
    command = replica["command"]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8443"
    certfile = command[command.index("--certfile") + 1]
    assert certfile == replica["environment"]["PORTCULLIS_CERTFILE"]
    tls_dir = certfile.rsplit("/", 1)[0]
    assert any(v.split(":")[1] == tls_dir for v in replica["volumes"])
    drain = int(replica["environment"]["PORTCULLIS_DRAIN_SECONDS"])
    graceful = int(tomllib.loads((ROOT / "hypercorn.toml").read_text())["graceful_timeout"])
    assert int(replica["stop_grace_period"].removesuffix("s")) > drain + graceful


def test_the_replicas_pools_fit_in_postgres_max_connections() -> None:
    """replicas x workers x (pool + overflow) <= max_connections - reserve (README)."""
    services = compose()["services"]
    command = services["postgres"]["command"]
    max_connections = int(
        next(c.split("=", 1)[1] for c in command if c.startswith("max_connections="))
    )
    reserve = 10  # migrate, an operator's psql, superuser_reserved_connections (3)
    total = 0
    for name in REPLICAS:
        env = services[name]["environment"]
        args = services[name]["command"]
        workers = int(args[args.index("--workers") + 1])
        per_process = int(env["PORTCULLIS_DB_POOL_SIZE"]) + int(env["PORTCULLIS_DB_MAX_OVERFLOW"])
        total += workers * per_process
    assert total <= max_connections - reserve, (total, max_connections)
