"""Failures and restarts under traffic: a Redis outage, kill -9 of a replica, the drain
after SIGTERM and a rolling restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.scale.api import (
    DRAIN_SECONDS,
    ME,
    REGISTER_QUOTA,
    bearer,
    login,
    register_burst,
    register_requests,
)
from tests.support.cluster import Cluster, Replica

pytestmark = [pytest.mark.scale, pytest.mark.server]


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
    failures: list[str] = []
    resent: list[int] = []  # writes the client sent again, as the README says

    async def write(lb: httpx.AsyncClient, i: int) -> None:
        """As a client that follows deploy/README.md: the balancer replays a write with an
        Idempotency-Key on another replica when one dies under it. What the client
        retries itself (once, same key) is what the README names: a keep-alive connection
        the balancer closed before any byte of an answer, and an answer cut off after its
        head (the replica died between the two; the balancer had already passed the
        head on, so it cannot retry). The retry is answered from the stored result."""
        key = f"{tag}-{i}-{uuid.uuid4()}"
        body = {"title": f"note {i}", "body": "written while a replica dies", "tags": [tag]}
        headers = {**bearer(token), "Idempotency-Key": key}
        for attempt in range(2):
            try:
                r = await lb.post("/v1/notes", json=body, headers=headers)
            except httpx.RemoteProtocolError as exc:
                if attempt == 0 and (str(exc) == UNANSWERED or str(exc).startswith(CUT_SHORT)):
                    resent.append(i)
                    continue
                failures.append(f"write {i}: {type(exc).__name__}: {exc}")
                return
            except httpx.TransportError as exc:
                failures.append(f"write {i}: {type(exc).__name__}: {exc}")
                return
            if r.status_code in (200, 201):
                created[i] = r.json()["id"]
            else:
                failures.append(f"write {i}: {r.status_code} {r.text[:200]}")
            return

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
    assert failures == []  # no other transport error, no 5xx, no second failure
    assert len(resent) <= 6, resent  # at most once per client connection (6)
    assert sorted(ids) == sorted(created.values())  # nothing lost, nothing twice
    assert sorted(titles) == sorted(f"note {i}" for i in range(total))


# httpx's words for a connection closed before any byte of an answer, and after the
# answer's head but before its whole body.
UNANSWERED = "Server disconnected without sending a response."
CUT_SHORT = "peer closed connection without sending complete message body"


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
        # At once, give or take Hypercorn's master-to-worker hand-off (polled every 0.1 s);
        # each look is a new connection: the listener is still open.
        while True:
            with cluster.direct(victim) as client:
                ready = client.get("/readyz")
            if ready.status_code == 503 or time.monotonic() - signalled > 0.5:
                break
            time.sleep(0.05)
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
