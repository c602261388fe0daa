"""Stateless DPoP server nonces (RFC 9449 §8, §9): every replica issues and accepts
the same nonces without sharing any state but the signing key file.

A nonce is a time slot and an HMAC of it, under a key derived (HKDF) from a signing
key's private part. It is issued under the current signing key and accepted under any
key of the set, for the current and the previous slot: a nonce lives between one and
two slots, and a key rotation (published before it signs) never invalidates one early.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .keys import KeyManager, KeyRing

SLOT_SECONDS = 300
_INFO = b"portcullis dpop-nonce v1"
_MAC_BYTES = 16


def _derive(private_d: str) -> bytes:
    secret = base64.urlsafe_b64decode(private_d + "=" * (-len(private_d) % 4))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


class NonceKeys:
    """Issues and checks nonces; the derived keys are cached per key-ring snapshot."""

    def __init__(self, keys: KeyManager) -> None:
        self.keys = keys
        self._ring: KeyRing | None = None
        self._derived: dict[str, bytes] = {}

    def _keys_of(self, ring: KeyRing) -> dict[str, bytes]:
        if ring is not self._ring:
            self._derived = {
                str(key["kid"]): _derive(str(key["d"])) for key in ring.keys if "d" in key
            }
            self._ring = ring
        return self._derived

    def issue(self, now: float) -> str:
        ring = self.keys.signing()
        key = self._keys_of(ring)[ring.current_kid]
        slot = struct.pack(">Q", int(now // SLOT_SECONDS))
        mac = hmac.new(key, slot, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(slot + mac).rstrip(b"=").decode()

    def valid(self, nonce: str, now: float) -> bool:
        if len(nonce) > 64:
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return False
        if len(raw) != 8 + _MAC_BYTES:
            return False
        (slot,) = struct.unpack(">Q", raw[:8])
        if int(now // SLOT_SECONDS) - slot not in (0, 1):
            return False
        return any(
            hmac.compare_digest(
                hmac.new(key, raw[:8], hashlib.sha256).digest()[:_MAC_BYTES], raw[8:]
            )
            for key in self._keys_of(self.keys.ring).values()
        )
