"""Client address resolution that only believes trusted reverse proxies.

The socket peer is the client, unless the peer is in `PORTCULLIS_TRUSTED_PROXIES`; then
the client is the right-most address of `Forwarded` (or else `X-Forwarded-For`) that is
not itself a trusted proxy. Headers from anyone else are ignored, so a client can never
choose its own address by sending them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_FOR = re.compile(r'(?i)(?:^|;)\s*for\s*=\s*"?\[?([^\]";,]+)\]?(?::\d+)?"?')
_PROTO = re.compile(r'(?i)(?:^|;)\s*proto\s*=\s*"?(https?)"?')


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


class ProxyResolver:
    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)

    def is_trusted(self, addr: IPAddress | None) -> bool:
        return addr is not None and any(addr in net for net in self.trusted)

    def resolve(
        self, peer: str, headers: Iterable[tuple[bytes, bytes]], scheme: str
    ) -> tuple[str, str]:
        """(client ip, scheme) for a request from `peer` with these raw headers."""
        peer_ip = parse_ip(peer)
        if not self.trusted or not self.is_trusted(peer_ip):
            return (str(peer_ip) if peer_ip is not None else peer or "unknown"), scheme
        forwarded: list[str] = []
        xff: list[str] = []
        protos: list[str] = []
        for raw_name, raw_value in headers:
            name = raw_name.lower()
            value = raw_value.decode("latin-1")
            if name == b"forwarded":
                for element in value.split(","):
                    match = _FOR.search(element)
                    forwarded.append(match.group(1) if match else "")
                    proto = _PROTO.search(element)
                    if proto:
                        protos.append(proto.group(1).lower())
            elif name == b"x-forwarded-for":
                xff.extend(part.strip() for part in value.split(","))
            elif name == b"x-forwarded-proto":
                protos.extend(part.strip().lower() for part in value.split(","))
        hops = forwarded or xff
        client: IPAddress | None = peer_ip
        for hop in reversed(hops):
            addr = parse_ip(hop)
            if addr is None:
                break  # garbage from an untrusted hop: stop at the last trusted one
            client = addr
            if not self.is_trusted(addr):
                break
        if protos and protos[-1] in ("http", "https"):
            scheme = protos[-1]
        return (str(client) if client is not None else "unknown"), scheme
