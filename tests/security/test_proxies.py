"""Client address resolution: only trusted proxies are believed."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from service import create_app
from service.security.proxies import ProxyResolver
from tests.conftest import client_for

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def resolve(peer: str, headers: list[tuple[str, str]], trusted: Any = TRUSTED) -> tuple[str, str]:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return ProxyResolver(trusted).resolve(peer, raw, "http")


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # untrusted peers: every forwarding header ignored
        ("203.0.113.5", [("X-Forwarded-For", "1.2.3.4")], "203.0.113.5"),
        ("203.0.113.5", [("Forwarded", "for=1.2.3.4")], "203.0.113.5"),
        ("203.0.113.5", [("X-Real-IP", "1.2.3.4")], "203.0.113.5"),
        # trusted proxy: right-most untrusted address
        ("10.0.0.1", [("X-Forwarded-For", "1.2.3.4, 198.51.100.9")], "198.51.100.9"),
        ("10.0.0.1", [("X-Forwarded-For", "1.2.3.4, 198.51.100.9, 10.0.0.7")], "198.51.100.9"),
        (
            "10.0.0.1",
            [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "198.51.100.9")],
            "198.51.100.9",
        ),
        (
            "10.0.0.1",
            [("Forwarded", 'for=1.2.3.4, for="[2001:db8::1]:443";proto=https')],
            "2001:db8::1",
        ),
        ("10.0.0.1", [("Forwarded", "for=198.51.100.3:1234")], "198.51.100.3"),
        ("10.0.0.1", [("X-Real-IP", "1.2.3.4")], "10.0.0.1"),  # X-Real-IP never believed
        ("10.0.0.1", [("X-Forwarded-For", "garbage, 10.0.0.9")], "10.0.0.9"),
        ("10.0.0.1", [], "10.0.0.1"),
        ("::ffff:203.0.113.5", [], "203.0.113.5"),
        ("fd00::1", [("X-Forwarded-For", "2001:db8::5")], "2001:db8::5"),
    ],
)
def test_resolution(peer: str, headers: list[tuple[str, str]], expected: str) -> None:
    assert resolve(peer, headers)[0] == expected


def test_no_trusted_proxies_means_peer_always() -> None:
    assert resolve("10.0.0.1", [("X-Forwarded-For", "1.2.3.4")], trusted=[])[0] == "10.0.0.1"


def test_scheme_only_from_trusted_proxy() -> None:
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "https")])[1] == "https"
    assert resolve("203.0.113.5", [("X-Forwarded-Proto", "https")])[1] == "http"


async def test_app_uses_resolved_address_in_logs_and_limits(settings_factory: Any) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8", rate_limit_default="3/minute"))
    async with app.test_app():
        async with client_for(app, ip="10.0.0.2") as via_proxy:
            codes = []
            for _ in range(4):
                r = await via_proxy.get("/v1/notes", headers={"X-Forwarded-For": "198.51.100.20"})
                codes.append(r.status_code)
            assert codes == [401, 401, 401, 429]
            # another real client behind the same proxy has its own budget
            r = await via_proxy.get("/v1/notes", headers={"X-Forwarded-For": "198.51.100.21"})
            assert r.status_code == 401
        async with client_for(app, ip="203.0.113.50") as direct:
            codes = []
            for i in range(4):
                r = await direct.get("/v1/notes", headers={"X-Forwarded-For": f"198.51.100.{i}"})
                codes.append(r.status_code)
            assert codes == [401, 401, 401, 429]
