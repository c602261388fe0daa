"""Through HAProxy: HTTPS only, metrics kept inside, and per-client limits and blocks
that follow the address the balancer saw, whatever the client claims."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.scale.api import (
    ME,
    PASSWORD,
    REGISTER_QUOTA,
    register_burst,
    register_requests,
    spoofing,
)
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.scale, pytest.mark.server]


def test_the_balancer_keeps_readiness_checks_inside(cluster: Cluster) -> None:
    """A readiness check costs a database and Redis round trip: only the balancer's own
    checks (sent to each replica directly) may make one."""
    with cluster.client() as lb:
        for path in ("/readyz", "/readyz/", "//readyz", "/%72eadyz", "/readyz?x=1"):
            assert lb.get(httpx.URL(cluster.url + path)).status_code == 404, path
        assert lb.get("/healthz").status_code == 200
    with cluster.direct(cluster.replicas[0]) as replica:
        assert replica.get("/readyz").status_code == 200
    assert set(cluster.server_status().values()) == {"UP"}  # its own checks still pass


def test_the_balancer_serves_https_only_and_keeps_metrics_inside(cluster: Cluster) -> None:
    with cluster.client() as lb:
        r = lb.get("/healthz")
        assert r.status_code == 200
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/METRICS"):
            # the public side never serves the metrics, however the path is spelt
            assert lb.get(httpx.URL(cluster.url + path)).status_code == 404, path
    with cluster.direct(cluster.replicas[0]) as replica:
        assert replica.get("/metrics").status_code == 200  # Prometheus scrapes each replica
    with httpx.Client() as plain:
        r = plain.get(f"http://127.0.0.1:{cluster.lb_http_port}/v1/notes?x=1")
        assert r.status_code == 308
        # the issuer's origin (its https port, not the plain one) and the same target
        assert r.headers["Location"] == f"{cluster.url}/v1/notes?x=1"


# Limits and blocks ----------------------------------------------------------------


async def test_a_burst_across_replicas_lets_exactly_the_quota_through(cluster: Cluster) -> None:
    source = cluster.fresh_source()
    codes = await register_burst(cluster, source, "burst", 3 * REGISTER_QUOTA)
    assert codes == {201: REGISTER_QUOTA, 429: 2 * REGISTER_QUOTA}
    served = register_requests(cluster, source)
    assert all(served.values()), f"the burst did not reach every replica: {served}"


def test_limits_follow_the_real_client_address(cluster: Cluster) -> None:
    spender, neighbour, claimed = (cluster.fresh_source() for _ in range(3))
    with cluster.client(spender) as lb:
        for i in range(REGISTER_QUOTA):
            r = lb.post("/v1/auth/register", json={"username": f"spend{i}", "password": PASSWORD})
            assert r.status_code == 201, r.text
        # Forwarding headers from the client do not buy it a fresh budget ...
        for i in range(3):
            r = lb.post(
                "/v1/auth/register",
                json={"username": f"spoof{i}", "password": PASSWORD},
                headers=spoofing(claimed),
            )
            assert r.status_code == 429, r.text
    # ... nor do they spend someone else's.
    with cluster.client(neighbour) as lb:
        r = lb.post(
            "/v1/auth/register",
            json={"username": "neighbour", "password": PASSWORD},
            headers=spoofing(spender),
        )
        assert r.status_code == 201, r.text

    def logged() -> set[str]:
        return {
            record["client_ip"]
            for replica in cluster.replicas
            for record in replica.requests(route="/v1/auth/register")
            if record["client_ip"] in (spender, neighbour, claimed)
        }

    # The access log line is written after the answer is sent: give it a moment to land.
    deadline = time.monotonic() + 5
    while logged() != {spender, neighbour} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged() == {spender, neighbour}


def test_blocks_follow_the_real_client_address(cluster: Cluster) -> None:
    abuser, bystander = cluster.fresh_source(), cluster.fresh_source()
    with cluster.client(abuser) as lb:
        statuses = [lb.get(ME).status_code for _ in range(15)]
    assert statuses[0] == 401 and 403 in statuses, statuses
    time.sleep(1.0)  # the block reaches every replica (the revocation test times this)
    with cluster.client(abuser) as lb:
        for _ in range(2 * len(cluster.replicas)):
            assert lb.get(ME, headers=spoofing(bystander)).status_code == 403
    for replica in cluster.replicas:
        assert replica.requests(route=ME, client_ip=abuser, status=403), replica.name
    with cluster.client(bystander) as lb:
        for _ in range(len(cluster.replicas)):
            assert lb.get(ME, headers=spoofing(abuser)).status_code == 401
