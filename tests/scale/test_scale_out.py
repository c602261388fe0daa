"""Three replicas behind HAProxy (deploy/haproxy/haproxy.cfg), on PostgreSQL and Redis:
what an operator running Portcullis at scale relies on, shown through the balancer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.scale.conftest import SCALE_ENV
from tests.support.cluster import Cluster, Replica

pytestmark = [pytest.mark.scale, pytest.mark.server]
PASSWORD = "Tr0ub4dor&3-horse-staple"
REGISTER_QUOTA = 10  # SCALE_ENV's PORTCULLIS_RATE_LIMIT_REGISTER
DRAIN_SECONDS = float(SCALE_ENV["PORTCULLIS_DRAIN_SECONDS"])
ACTIVATION_SECONDS = float(SCALE_ENV["PORTCULLIS_KEY_ACTIVATION_SECONDS"])
ME = "/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def spoofing(address: str) -> dict[str, str]:
    """Every forwarding header a client might send to pass for `address`."""
    return {
        "X-Forwarded-For": address,
        "Forwarded": f"for={address};proto=https",
        "X-Real-IP": address,
    }


def kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return str(header["kid"])


def login(cluster: Cluster, source: str, username: str) -> dict[str, Any]:
    """Register `username` through the balancer and log in: the token response."""
    with cluster.client(source) as lb:
        r = lb.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        form = {"grant_type": "password", "username": username, "password": PASSWORD}
        r = lb.post("/v1/auth/token", data=form)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def refresh(lb: httpx.Client, refresh_token: str) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    r = lb.post("/v1/auth/token", data=form)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def register_requests(cluster: Cluster, source: str) -> dict[str, int]:
    return {
        r.name: len(r.requests(route="/v1/auth/register", client_ip=source))
        for r in cluster.replicas
    }


async def register_burst(cluster: Cluster, source: str, prefix: str, count: int) -> Counter[int]:
    async with cluster.aclient(source) as lb:
        answers = await asyncio.gather(
            *(
                lb.post(
                    "/v1/auth/register",
                    json={"username": f"{prefix}{i}", "password": PASSWORD},
                )
                for i in range(count)
            )
        )
    return Counter(r.status_code for r in answers)


# The balancer ------------------------------------------------------------------------


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
        location = r.headers["Location"]  # same host (port included) and target
        assert location.startswith("https://127.0.0.1:") and location.endswith("/v1/notes?x=1")


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
    logged = {
        record["client_ip"]
        for replica in cluster.replicas
        for record in replica.requests(route="/v1/auth/register")
        if record["client_ip"] in (spender, neighbour, claimed)
    }
    assert logged == {spender, neighbour}


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


# Tokens ----------------------------------------------------------------------------


async def test_100_revocations_are_enforced_on_every_replica_within_1_s(
    cluster: Cluster,
) -> None:
    source = cluster.fresh_source()
    first = login(cluster, source, "revoker")
    tokens = [first["access_token"]]
    with cluster.client(source) as lb:
        refresh_token = first["refresh_token"]
        while len(tokens) < 100:
            body = refresh(lb, refresh_token)
            tokens.append(body["access_token"])
            refresh_token = body["refresh_token"]

    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(cluster.aclient(base_url=r.url, http2=True))
            for r in cluster.replicas
        ]
        balancer = await stack.enter_async_context(cluster.aclient(source, http2=True))

        async def statuses() -> Counter[int]:
            answers = await asyncio.gather(
                *(client.get(ME, headers=bearer(t)) for client in replicas for t in tokens)
            )
            return Counter(a.status_code for a in answers)

        assert await statuses() == {200: 300}
        revoked = await asyncio.gather(
            *(
                balancer.post(
                    "/v1/auth/revoke", data={"token": t, "token_type_hint": "access_token"}
                )
                for t in tokens
            )
        )
        answered = time.monotonic()
        assert {r.status_code for r in revoked} == {200}
        await asyncio.sleep(answered + 1.0 - time.monotonic())
        assert await statuses() == {401: 300}
    spread = {r.name: len(r.requests(route="/v1/auth/revoke")) for r in cluster.replicas}
    assert all(spread.values()), f"the revocations did not reach every replica: {spread}"


async def test_a_rotated_key_produces_no_rejected_token(cluster: Cluster) -> None:
    source = cluster.fresh_source()
    first = login(cluster, source, "rotator")
    old_token = first["access_token"]
    old_kid = kid_of(old_token)
    chains = [first["refresh_token"]]  # one refresh chain (login session) per replica
    with cluster.client(source) as lb:
        form = {"grant_type": "password", "username": "rotator", "password": PASSWORD}
        chains += [lb.post("/v1/auth/token", data=form).json()["refresh_token"] for _ in "ab"]
    before = {k["kid"] for k in json.loads(cluster.keys_file.read_text())["keys"]}
    result = cluster.cli("keys", "rotate")
    rotated = cluster.keys_file.stat().st_mtime  # when the new key was published
    assert result.returncode == 0, result.stderr
    added = {k["kid"] for k in json.loads(cluster.keys_file.read_text())["keys"]} - before
    assert len(added) == 1
    new_kid = added.pop()

    rejected: list[tuple[str, str, str, int]] = []
    signed_new: dict[str, float] = {}
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(cluster.aclient(base_url=r.url, http2=True))
            for r in cluster.replicas
        ]
        names = [r.name for r in cluster.replicas]
        # Every replica mints tokens as fast as it can, and every replica checks each of
        # them (and the first, old-key token) at once: until the new key has signed on
        # every replica for longer than a key reload period, nothing is rejected.
        while len(signed_new) < len(names) or time.time() - min(signed_new.values()) < 4:
            assert time.monotonic() - started < 40, f"the new key signed only on {signed_new}"
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/v1/auth/token",
                        data={"grant_type": "refresh_token", "refresh_token": chain},
                    )
                    for client, chain in zip(replicas, chains, strict=True)
                )
            )
            assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
            chains = [a.json()["refresh_token"] for a in answers]
            minted = [(names[i], a.json()["access_token"]) for i, a in enumerate(answers)]
            minted.append(("first token", old_token))
            for issuer, token in minted:
                assert kid_of(token) in (old_kid, new_kid)
                if kid_of(token) == new_kid:
                    signed_new.setdefault(issuer, time.time())
            checks = [(name, issuer, token) for name in names for issuer, token in minted]
            statuses = await asyncio.gather(
                *(
                    replicas[names.index(name)].get(ME, headers=bearer(token))
                    for name, _, token in checks
                )
            )
            rejected += [
                (name, issuer, kid_of(token), s.status_code)
                for (name, issuer, token), s in zip(checks, statuses, strict=True)
                if s.status_code != 200
            ]
        for client in replicas:
            published = {
                k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]
            }
            assert {old_kid, new_kid} <= published
    # Published at once (the replicas reload the key file every 2.5 s), signing only after
    # the activation delay (less 1 s of slack for whole-second timestamps): however the
    # reloads interleave, no replica signs with a key another may not have loaded yet.
    first_signed = min(signed_new.values()) - rotated
    assert first_signed >= ACTIVATION_SECONDS - 1, f"the new key signed after {first_signed:.1f} s"
    assert not rejected, f"{len(rejected)} rejected (checker, issuer, kid, status): {rejected[:5]}"


# Failures ----------------------------------------------------------------------------


def test_a_redis_outage_keeps_every_replica_in_rotation(cluster: Cluster) -> None:
    source = cluster.fresh_source()
    token = login(cluster, source, "weathered")["access_token"]
    problems: list[str] = []
    degraded: dict[str, float] = {}
    cluster.cut_redis()
    cut = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            lb = stack.enter_context(cluster.client(source))
            replicas = [stack.enter_context(cluster.direct(r)) for r in cluster.replicas]
            while (elapsed := time.monotonic() - cut) < 7:
                status = cluster.server_status()
                if set(status.values()) != {"UP"}:
                    problems.append(f"{elapsed:.1f}s: balancer sees {status}")
                r = lb.get(ME, headers=bearer(token))
                if r.status_code != 200:
                    problems.append(f"{elapsed:.1f}s: {ME} answered {r.status_code}")
                for replica, client in zip(cluster.replicas, replicas, strict=True):
                    ready = client.get("/readyz")
                    if ready.status_code != 200:
                        problems.append(f"{elapsed:.1f}s: {replica.name} /readyz {ready.text}")
                    elif ready.json().get("status") == "degraded":
                        degraded.setdefault(replica.name, elapsed)
                time.sleep(0.5)
    finally:
        cluster.restore_redis()
    restored = time.monotonic()
    assert not problems, problems[:10]
    assert set(degraded) == {r.name for r in cluster.replicas}, degraded
    assert max(degraded.values()) <= 5.5, f"degraded readiness came late: {degraded}"
    # Within 2 s of Redis's return the replicas share one budget again.
    time.sleep(max(0.0, restored + 2 - time.monotonic()))
    source = cluster.fresh_source()
    codes = asyncio.run(register_burst(cluster, source, "after", 3 * REGISTER_QUOTA))
    assert codes == {201: REGISTER_QUOTA, 429: 2 * REGISTER_QUOTA}
    assert all(register_requests(cluster, source).values())


async def test_kill_9_under_idempotent_writes_loses_and_duplicates_nothing(
    cluster: Cluster,
) -> None:
    source = cluster.fresh_source()
    token = login(cluster, source, "writer")["access_token"]
    victim = cluster.replicas[1]
    total, tag = 60, "kill9"
    created: dict[int, str] = {}
    client_retries = 0

    async def write(lb: httpx.AsyncClient, i: int) -> None:
        nonlocal client_retries
        key = f"{tag}-{i}-{uuid.uuid4()}"
        body = {"title": f"note {i}", "body": "written while a replica dies", "tags": [tag]}
        headers = {**bearer(token), "Idempotency-Key": key}
        deadline = time.monotonic() + 60
        while True:  # the client retries with the same key until it has an answer
            try:
                r = await lb.post("/v1/notes", json=body, headers=headers)
            except httpx.TransportError:
                pass
            else:
                if r.status_code in (200, 201):
                    created[i] = r.json()["id"]
                    return
                assert r.status_code in (502, 503, 504), r.text
            client_retries += 1
            assert time.monotonic() < deadline, f"write {i} never succeeded"
            await asyncio.sleep(0.1)

    async def kill_midway() -> None:
        while len(created) < total // 3:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(victim.kill9)

    try:
        async with cluster.aclient(source) as lb:
            gate = asyncio.Semaphore(6)

            async def bounded(i: int) -> None:
                async with gate:
                    await write(lb, i)

            await asyncio.gather(kill_midway(), *(bounded(i) for i in range(total)))
            ids: list[str] = []
            titles: list[str] = []
            cursor: str | None = None
            while True:
                params = {"limit": "100", "tag": tag, **({"cursor": cursor} if cursor else {})}
                page = (await lb.get("/v1/notes", params=params, headers=bearer(token))).json()
                ids += [item["id"] for item in page["items"]]
                titles += [item["title"] for item in page["items"]]
                if not (cursor := page["next_cursor"]):
                    break
    finally:
        if victim.process is not None and victim.process.poll() is not None:
            cluster.restart(victim)
    assert victim.requests(route="/v1/notes", method="POST"), "the victim served no write"
    assert sorted(ids) == sorted(created.values())  # nothing lost, nothing twice
    assert sorted(titles) == sorted(f"note {i}" for i in range(total))


def _stop_and_wait(replica: Replica, timeout: float) -> int:
    assert replica.process is not None
    try:
        return replica.process.wait(timeout=timeout)
    except Exception:
        replica.stop()
        raise


def test_sigterm_drains_the_replica_before_it_stops(cluster: Cluster) -> None:
    victim = cluster.replicas[2]
    served: list[int] = []
    left_rotation: float | None = None
    with cluster.direct(victim) as client:
        assert client.get("/readyz").status_code == 200
    victim.sigterm()
    signalled = time.monotonic()
    try:
        with cluster.direct(victim) as client:
            ready = client.get("/readyz")  # a new connection: the listener is still open
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "unavailable"
        assert "Retry-After" in ready.headers
        while time.monotonic() - signalled < DRAIN_SECONDS - 0.5:
            with cluster.direct(victim) as client:
                served.append(client.get("/healthz").status_code)
            if left_rotation is None and cluster.server_status()[victim.name].startswith("DOWN"):
                left_rotation = time.monotonic() - signalled
            time.sleep(0.1)
        assert set(served) == {200}, served
        assert left_rotation is not None, "the balancer still sent traffic as the drain ended"
        assert _stop_and_wait(victim, DRAIN_SECONDS + 20) == 0
    finally:
        victim.stop()
        cluster.restart(victim)


async def test_a_rolling_restart_fails_no_request(cluster: Cluster) -> None:
    source = cluster.fresh_source()
    token = login(cluster, source, "patient")["access_token"]
    failures: list[str] = []
    answered: Counter[int] = Counter()
    exit_codes: list[int] = []
    rolling = True

    async def load(lb: httpx.AsyncClient, n: int) -> None:
        i = 0
        while rolling:
            i += 1
            try:
                if i % 2:
                    r = await lb.get(ME, headers=bearer(token))
                else:  # no Idempotency-Key: nobody may replay this write
                    note = {"title": f"rolling {n}-{i}", "body": "", "tags": []}
                    r = await lb.post("/v1/notes", json=note, headers=bearer(token))
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            else:
                answered[r.status_code] += 1
                if r.status_code not in (200, 201):
                    failures.append(f"{r.status_code}: {r.text[:200]}")
            await asyncio.sleep(0.02)

    async def roll() -> None:
        nonlocal rolling
        try:
            for replica in cluster.replicas:
                await asyncio.to_thread(replica.sigterm)
                exit_codes.append(await asyncio.to_thread(_stop_and_wait, replica, 60))
                await asyncio.to_thread(cluster.restart, replica)
        finally:
            rolling = False

    async with cluster.aclient(source) as lb:
        await asyncio.gather(roll(), *(load(lb, n) for n in range(4)))
    assert exit_codes == [0, 0, 0]
    assert not failures, f"{len(failures)} failed of {sum(answered.values())}: {failures[:5]}"
    assert answered[200] > 50 and answered[201] > 50, answered
