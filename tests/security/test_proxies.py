"""Client address resolution: only trusted proxies are believed, only through the one
header they set, and IPv6 clients are keyed by their prefix."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from service import create_app
from service.security.proxies import ClientKeys, ProxyResolver, block_key, client_key
from tests.conftest import bearer, client_for, make_admin

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
PROXY = "10.0.0.2"  # the balancer, as the service sees it


def resolve(
    peer: str,
    headers: list[tuple[str, str]],
    trusted: Any = TRUSTED,
    header: str = "x-forwarded-for",
    scheme: str = "http",
) -> tuple[str, str]:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return ProxyResolver(trusted, header).resolve(peer, raw, scheme)


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
        ("10.0.0.1", [("X-Real-IP", "1.2.3.4")], "10.0.0.1"),  # X-Real-IP never believed
        ("10.0.0.1", [("X-Forwarded-For", "garbage, 10.0.0.9")], "10.0.0.9"),
        ("10.0.0.1", [], "10.0.0.1"),
        ("::ffff:203.0.113.5", [], "203.0.113.5"),
        ("fd00::1", [("X-Forwarded-For", "2001:db8::5")], "2001:db8::5"),
        # the client's own Forwarded, passed through by an X-Forwarded-For balancer
        (
            "10.0.0.1",
            [("Forwarded", "for=127.0.0.1"), ("X-Forwarded-For", "198.51.100.9")],
            "198.51.100.9",
        ),
        ("10.0.0.1", [("Forwarded", "for=127.0.0.1")], "10.0.0.1"),
    ],
)
def test_resolution_x_forwarded_for(
    peer: str, headers: list[tuple[str, str]], expected: str
) -> None:
    assert resolve(peer, headers)[0] == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Forwarded", 'for=1.2.3.4, for="[2001:db8::1]:443";proto=https')], "2001:db8::1"),
        ([("Forwarded", "for=198.51.100.3:1234")], "198.51.100.3"),
        ([("Forwarded", "for=1.2.3.4"), ("Forwarded", "For=198.51.100.4")], "198.51.100.4"),
        ([("Forwarded", "for=1.2.3.4, for=198.51.100.4, for=10.0.0.7")], "198.51.100.4"),
        # the client's own X-Forwarded-For, passed through by a Forwarded proxy
        ([("X-Forwarded-For", "127.0.0.1"), ("Forwarded", "for=198.51.100.5")], "198.51.100.5"),
        ([("X-Forwarded-For", "127.0.0.1")], "10.0.0.1"),
        # an unclosed quote from the client cannot swallow the proxy's element
        ([("Forwarded", 'for="127.0.0.1'), ("Forwarded", "for=198.51.100.6")], "198.51.100.6"),
        # a repeated parameter or an obfuscated identifier: stop at the proxy
        ([("Forwarded", "for=198.51.100.7;for=127.0.0.1")], "10.0.0.1"),
        ([("Forwarded", "for=_hidden")], "10.0.0.1"),
    ],
)
def test_resolution_forwarded(headers: list[tuple[str, str]], expected: str) -> None:
    assert resolve("10.0.0.1", headers, header="forwarded")[0] == expected


def test_no_trusted_proxies_means_peer_always() -> None:
    assert resolve("10.0.0.1", [("X-Forwarded-For", "1.2.3.4")], trusted=[])[0] == "10.0.0.1"
    assert resolve("10.0.0.1", [("Forwarded", "for=1.2.3.4")], [], "forwarded")[0] == "10.0.0.1"


def test_scheme_only_from_trusted_proxy_and_its_own_header() -> None:
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "https")])[1] == "https"
    assert resolve("203.0.113.5", [("X-Forwarded-Proto", "https")])[1] == "http"
    # the nearest proxy's value wins over what the client put in front of it
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "http, https")])[1] == "https"
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "https, http")])[1] == "http"
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "https, gopher")])[1] == "http"
    # the other family is ignored in each mode
    assert resolve("10.0.0.1", [("Forwarded", "for=1.2.3.4;proto=https")])[1] == "http"
    assert resolve("10.0.0.1", [("X-Forwarded-Proto", "https")], header="forwarded")[1] == "http"
    assert resolve("10.0.0.1", [("Forwarded", "for=1.2.3.4;proto=https")], header="forwarded")[
        1
    ] == ("https")
    # Forwarded: the proto of the element that names the client, not a client-sent one
    chain = [("Forwarded", "for=1.2.3.4;proto=http, for=198.51.100.1;proto=https, for=10.0.0.9")]
    assert resolve("10.0.0.1", chain, header="forwarded") == ("198.51.100.1", "https")


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_forwarded_http_never_downgrades_tls(header: str) -> None:
    headers = [("X-Forwarded-Proto", "http"), ("Forwarded", "for=198.51.100.9;proto=http")]
    assert resolve("10.0.0.1", headers, header=header, scheme="https")[1] == "https"


def test_client_keys_remember_a_bounded_number_of_addresses() -> None:
    """The request path's `ClientKeys` answers as `client_key` does, for its prefix, and
    keeps at most `max_entries` answers (the oldest goes)."""
    keys = ClientKeys(56, max_entries=2)
    addresses = ["2001:db8:1:2ff::1", "203.0.113.5", "::ffff:203.0.113.5", "unknown"]
    for ip in addresses + addresses:
        assert keys(ip) == client_key(ip, 56)
    assert len(keys._keys) == 2


def test_client_key_by_ipv6_prefix() -> None:
    assert client_key("203.0.113.5", 64) == "203.0.113.5"
    assert client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2ff::1", 56) == "2001:db8:1:200::/56"
    assert client_key("2001:db8::1", 128) == "2001:db8::1/128"
    assert client_key("::ffff:203.0.113.5", 64) == "203.0.113.5"
    assert client_key("unknown", 64) == "unknown"
    assert block_key("2001:db8:1:2::77", 64) == "2001:db8:1:2::/64"
    assert block_key("2001:db8:1:2::/64", 64) == "2001:db8:1:2::/64"
    assert block_key("203.0.113.5", 64) == "203.0.113.5"
    for other in ("2001:db8:1:2::/48", "2001:db8:1:2::1/64", "203.0.113.5/32", "x", "1.2.3.4/x"):
        assert block_key(other, 64) is None, other


async def test_app_uses_resolved_address_in_logs_and_limits(settings_factory: Any) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8", rate_limit_default="3/minute"))
    async with app.test_app():
        async with client_for(app, ip=PROXY) as via_proxy:
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


# From the attacker's side, through a balancer that appends X-Forwarded-For and passes
# the client's own Forwarded header on unchanged.


def spoofed(real: str, claimed: str) -> dict[str, str]:
    """What the service receives: the client's Forwarded, the balancer's X-Forwarded-For."""
    return {"Forwarded": f"for={claimed};proto=https", "X-Forwarded-For": real}


async def test_spoofed_forwarded_cannot_open_metrics(settings_factory: Any) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8"))
    async with app.test_app(), client_for(app, ip=PROXY) as via_proxy:
        for claimed in ("127.0.0.1", '"[::1]"'):
            r = await via_proxy.get("/metrics", headers=spoofed("198.51.100.30", claimed))
            assert r.status_code == 404 and "portcullis_" not in r.text


async def test_spoofed_forwarded_cannot_escape_limits(settings_factory: Any) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8", rate_limit_default="3/minute"))
    async with app.test_app(), client_for(app, ip=PROXY) as via_proxy:
        codes = []
        for i in range(5):
            r = await via_proxy.get("/v1/notes", headers=spoofed("198.51.100.31", f"192.0.2.{i}"))
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429, 429]


async def test_spoofed_forwarded_cannot_escape_a_block_or_frame_another(
    settings_factory: Any,
) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8", block_after="3/minute"))
    attacker, victim = "198.51.100.32", "198.51.100.33"
    async with app.test_app(), client_for(app, ip=PROXY) as via_proxy:
        codes = []
        for _ in range(8):  # failures charged to the victim, if the header were believed
            r = await via_proxy.get("/v1/notes", headers=spoofed(attacker, victim))
            codes.append(r.status_code)
        assert codes[-1] == 403 and 401 in codes
        # the attacker is the one blocked, whatever address it claims next
        r = await via_proxy.get("/v1/notes", headers=spoofed(attacker, "192.0.2.77"))
        assert r.status_code == 403
        r = await via_proxy.get("/v1/notes", headers={"X-Forwarded-For": victim})
        assert r.status_code == 401


async def test_forwarded_mode_ignores_x_forwarded_for(settings_factory: Any) -> None:
    app = create_app(
        settings_factory(
            trusted_proxies="10.0.0.0/8",
            forwarded_header="Forwarded",
            rate_limit_default="3/minute",
        )
    )
    async with app.test_app(), client_for(app, ip=PROXY) as via_proxy:
        real = {"Forwarded": "for=198.51.100.40;proto=https"}
        r = await via_proxy.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1", **real})
        assert r.status_code == 404
        codes = []
        for i in range(4):
            r = await via_proxy.get(
                "/v1/notes", headers={"X-Forwarded-For": f"192.0.2.{i}", **real}
            )
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429]


async def test_client_sent_proto_http_keeps_tls_and_hsts(settings_factory: Any) -> None:
    app = create_app(settings_factory(trusted_proxies="10.0.0.0/8"))
    async with app.test_app(), client_for(app, ip=PROXY, scheme="https") as via_proxy:
        r = await via_proxy.get(
            "/healthz", headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": "198.51.100.41"}
        )
        assert r.status_code == 200 and "location" not in r.headers
        assert r.headers["strict-transport-security"].startswith("max-age=")
    # the balancer on the plain-http port saying https is believed; a client is not
    async with client_for(app, ip=PROXY, scheme="http") as via_proxy:
        r = await via_proxy.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert r.status_code == 200 and "strict-transport-security" in r.headers
        r = await via_proxy.get("/healthz", headers={"Forwarded": "proto=https"})
        assert r.status_code == 308
    async with client_for(app, ip="203.0.113.42", scheme="http") as direct:
        r = await direct.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert r.status_code == 308


# IPv6: one subscriber holds a whole prefix.


async def test_ipv6_rotation_within_a_prefix_shares_one_budget(settings_factory: Any) -> None:
    app = create_app(settings_factory(rate_limit_default="3/minute"))
    async with app.test_app():
        codes = []
        for i in range(1, 5):
            async with client_for(app, ip=f"2001:db8:1:2::{i:x}") as rotating:
                codes.append((await rotating.get("/v1/notes")).status_code)
        assert codes == [401, 401, 401, 429]
        async with client_for(app, ip="2001:db8:1:3::1") as neighbour:
            assert (await neighbour.get("/v1/notes")).status_code == 401


async def test_ipv6_prefix_setting_is_honoured(settings_factory: Any) -> None:
    app = create_app(settings_factory(rate_limit_default="3/minute", ipv6_prefix=56))
    async with app.test_app():
        codes = []
        for net in ("2001:db8:1:100", "2001:db8:1:1ff", "2001:db8:1:142", "2001:db8:1:1aa"):
            async with client_for(app, ip=f"{net}::9") as rotating:
                codes.append((await rotating.get("/v1/notes")).status_code)
        assert codes == [401, 401, 401, 429]
        async with client_for(app, ip="2001:db8:1:200::9") as other:
            assert (await other.get("/v1/notes")).status_code == 401


async def test_ipv6_rotation_is_blocked_as_one_and_lifted_by_prefix(
    settings_factory: Any,
) -> None:
    app = create_app(
        settings_factory(block_after="3/minute", block_exempt="2001:db8:1:2::ffff/128")
    )
    async with app.test_app():
        codes = []
        for i in range(1, 9):
            async with client_for(app, ip=f"2001:db8:1:2::{i:x}") as rotating:
                codes.append((await rotating.get("/v1/notes")).status_code)
        assert codes[0] == 401 and codes[-1] == 403
        async with client_for(app, ip="2001:db8:1:2:dead:beef:0:1") as fresh:
            assert (await fresh.get("/v1/notes")).status_code == 403
        # the exemption tests the real address, not the prefix it shares
        async with client_for(app, ip="2001:db8:1:2::ffff") as exempt:
            assert (await exempt.get("/v1/notes")).status_code == 401
        async with client_for(app, ip="203.0.113.99") as admin_client:
            admin = bearer(await make_admin(app, admin_client))
            listed = (await admin_client.get("/v1/admin/blocks", headers=admin)).json()
            assert [b["ip"] for b in listed["items"]] == ["2001:db8:1:2::/64"]
            r = await admin_client.delete("/v1/admin/blocks/2001:db8:1:2::/48", headers=admin)
            assert r.status_code == 404
            r = await admin_client.delete("/v1/admin/blocks/2001:db8:1:2::/64", headers=admin)
            assert r.status_code == 204
            r = await admin_client.delete("/v1/admin/blocks/2001:db8:1:2::5", headers=admin)
            assert r.status_code == 404  # already lifted: an address names its prefix
        async with client_for(app, ip="2001:db8:1:2::1") as lifted:
            assert (await lifted.get("/v1/notes")).status_code == 401


async def test_metrics_allow_tests_the_full_ipv6_address(settings_factory: Any) -> None:
    app = create_app(settings_factory(metrics_allow="2001:db8::1/128"))
    async with app.test_app():
        async with client_for(app, ip="2001:db8::1") as allowed:
            assert (await allowed.get("/metrics")).status_code == 200
        async with client_for(app, ip="2001:db8::2") as neighbour:
            assert (await neighbour.get("/metrics")).status_code == 404


def test_settings_refuse_unknown_header_and_tiny_prefix(settings_factory: Any) -> None:
    assert settings_factory().forwarded_header == "x-forwarded-for"
    assert settings_factory().ipv6_prefix == 64
    assert settings_factory(forwarded_header=" Forwarded ").forwarded_header == "forwarded"
    for bad in ({"forwarded_header": "x-real-ip"}, {"ipv6_prefix": 16}, {"ipv6_prefix": 129}):
        with pytest.raises(ValueError, match=r"forwarded_header|ipv6_prefix"):
            settings_factory(**bad)
