"""Client address resolution that only believes trusted reverse proxies.

The socket peer is the client, unless the peer is in `PORTCULLIS_TRUSTED_PROXIES`; then
the client is the right-most address that is not itself a trusted proxy, read from the
one header those proxies set (`PORTCULLIS_FORWARDED_HEADER`: `X-Forwarded-For` or
`Forwarded`). The other header is never read: balancers append to the header they
manage and pass the other one through from the client unchanged, so believing it
would let a client choose its own address. The scheme comes from the same family
(`X-Forwarded-Proto`, or `proto=` of `Forwarded`), only upgrades http to https, and
never downgrades a connection that is TLS at the socket. No forwarded host is read:
every URL the service builds starts with the issuer.

`client_key` maps an address to the key of limits, failure counts and blocks: IPv4 as
is, IPv6 as its network of `PORTCULLIS_IPV6_PREFIX` bits (one subscriber's allocation).
The request path asks through `ClientKeys`, which remembers the keys of the addresses
seen lately (working out an IPv6 network costs more than the rest of the gate's work).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from ..cache import BoundedCache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HEADERS = ("x-forwarded-for", "forwarded")
_SCHEMES = frozenset({"http", "https"})


def parse_ip(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # IPv4 with port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_key(ip: str, ipv6_prefix: int) -> str:
    """`ip` as the key of limits, failure counts and blocks: an IPv4 address as is, an
    IPv6 address as its `/ipv6_prefix` network (`2001:db8:1:2::/64`), anything else as is."""
    addr = parse_ip(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return str(addr) if addr is not None else ip


MAX_CLIENT_KEYS = 8192


class ClientKeys:
    """`client_key` with this service's prefix length, for the request path: the keys of
    the last `max_entries` addresses are remembered (`cache.BoundedCache`). Created and
    held by `Services`; the gate and the failure counter ask it."""

    __slots__ = ("_keys", "ipv6_prefix")

    def __init__(self, ipv6_prefix: int, max_entries: int = MAX_CLIENT_KEYS) -> None:
        self.ipv6_prefix = ipv6_prefix
        self._keys: BoundedCache[str, str] = BoundedCache(max_entries)

    def __call__(self, ip: str) -> str:
        key = self._keys.get(ip)
        if key is None:
            key = client_key(ip, self.ipv6_prefix)
            self._keys.put(ip, key)
        return key


def block_key(text: str, ipv6_prefix: int) -> str | None:
    """The client key an operator names: an address (an IPv6 one names its prefix) or
    the key itself as the blocks list shows it (`2001:db8:1:2::/64`); None otherwise."""
    try:
        if "/" not in text:
            return client_key(str(ipaddress.ip_address(text)), ipv6_prefix)
        network = ipaddress.ip_network(text)
    except ValueError:
        return None
    key = client_key(str(network.network_address), ipv6_prefix)
    return key if key == str(network) else None


def _items(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """The comma-separated items of every `name` header line, in order. A plain split:
    a quote a client left open can never swallow the items the proxies appended."""
    items: list[str] = []
    for raw_name, raw_value in headers:
        if raw_name.lower() == name:
            items.extend(item.strip() for item in raw_value.decode("latin-1").split(","))
    return items


def _element(text: str) -> tuple[str, str | None]:
    """(`for`, `proto`) of one RFC 7239 element; a repeated parameter spoils it."""
    params: dict[str, str] = {}
    for pair in text.split(";"):
        name, sep, value = pair.partition("=")
        key = name.strip().lower()
        if not sep or key in params:
            return "", None
        params[key] = value.strip().strip('"')
    proto = params.get("proto", "").lower()
    return params.get("for", ""), proto if proto in _SCHEMES else None


_MAX_PEERS = 4096


class ProxyResolver:
    def __init__(self, trusted: Sequence[Network], header: str = "x-forwarded-for") -> None:
        if header not in HEADERS:
            raise ValueError(f"forwarded header must be one of {HEADERS}")
        self.trusted = tuple(trusted)
        self.header = header
        # Per peer text: (the address as logged and keyed, parsed, a trusted proxy?).
        # Parsing the peer costs more than the rest of the resolution (bench/PROFILE.md).
        self._peers: BoundedCache[str, tuple[str, IPAddress | None, bool]] = BoundedCache(
            _MAX_PEERS
        )

    def _peer(self, peer: str) -> tuple[str, IPAddress | None, bool]:
        known = self._peers.get(peer)
        if known is None:
            peer_ip = parse_ip(peer)
            text = str(peer_ip) if peer_ip is not None else peer or "unknown"
            known = (text, peer_ip, bool(self.trusted) and self.is_trusted(peer_ip))
            self._peers.put(peer, known)  # many distinct peers only cost the parse
        return known

    def is_trusted(self, addr: IPAddress | None) -> bool:
        return addr is not None and any(addr in net for net in self.trusted)

    def resolve(
        self, peer: str, headers: Iterable[tuple[bytes, bytes]], scheme: str
    ) -> tuple[str, str]:
        """(client ip, scheme) for a request from `peer` with these raw headers, where
        `scheme` (`http` or `https`) is what the socket speaks."""
        text, peer_ip, trusted = self._peer(peer)
        if not trusted:
            return text, scheme
        headers = list(headers)
        if self.header == "forwarded":
            hops = [_element(item) for item in _items(headers, b"forwarded")]
            proto = None
        else:
            hops = [(item, None) for item in _items(headers, b"x-forwarded-for")]
            protos = _items(headers, b"x-forwarded-proto")
            # the nearest trusted proxy's value; anything left of it may be the client's
            proto = protos[-1].lower() if protos and protos[-1].lower() in _SCHEMES else None
        client: IPAddress | None = peer_ip
        # Walk from the nearest hop outwards. Each element looked at was appended by a
        # trusted proxy, so its `proto=` is believed; the last one describes the client.
        for hop, hop_proto in reversed(hops):
            proto = hop_proto or proto
            addr = parse_ip(hop)
            if addr is None:
                break  # garbage: stop at the last trusted hop
            client = addr
            if not self.is_trusted(addr):
                break
        if scheme != "https" and proto is not None:
            scheme = proto  # a proxy may say https; TLS at the socket stays https
        return (str(client) if client is not None else "unknown"), scheme
