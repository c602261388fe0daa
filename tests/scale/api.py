"""Calls through the balancer shared by the scale-out tests: users, tokens, bursts."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from typing import Any

import httpx

from tests.scale.conftest import SCALE_ENV
from tests.support.cluster import Cluster

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
