"""Signing keys: an RFC 7517 JWK Set file of private keys; the last key is current.

The file is created on first start (`KeyManager.open`, mode 0600) without a race when
several workers start at once: each writes a private temporary file and `os.link`s it
into place, which fails for all but the first. `rotate` appends a new key under an exclusive
`flock` and replaces the file atomically. Running processes notice the new file by its
modification time (the upkeep loop looks every few seconds).

A rotated-in key carries `activates` (Unix time): it is published in the JWKS at once
but signs only from then on, so every replica and outside verifier has fetched it
before it meets a token signed with it. The signing key is the last key of the file
whose `activates` has passed (a key without it is active). A key is retired when its
successor activates, and stays in the JWKS until every token it signed has expired.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from ..files import make_private_dirs

ALGORITHM = "ES256"
ALGORITHMS = (ALGORITHM,)
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def new_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=True)
    data: dict[str, Any] = key.as_dict(private=True)
    data.update(kid=secrets.token_urlsafe(12), alg=ALGORITHM, use="sig", iat=int(time.time()))
    return data


def _write_private(path: Path, document: dict[str, Any]) -> Path:
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def ensure_keys_file(path: Path) -> None:
    """Create the key file with one key unless it exists (race-free across processes)."""
    if path.exists():
        return
    tmp = _write_private(path, {"keys": [new_key()]})
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won; use its key
    finally:
        tmp.unlink(missing_ok=True)


_BOOKKEEPING = frozenset({"iat", "retired", "activates"})


def public_jwk(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if k not in _PRIVATE_MEMBERS and k not in _BOOKKEEPING}


def _activates(key: dict[str, Any]) -> float:
    value = key.get("activates", 0)
    return float(value) if isinstance(value, int | float) else 0.0


def _signing_index(keys: list[dict[str, Any]], now: float) -> int:
    """The last key whose activation time has passed (the first key when none has)."""
    active = [i for i, key in enumerate(keys) if _activates(key) <= now]
    return active[-1] if active else 0


def _retired_at(keys: list[dict[str, Any]], index: int, now: float) -> float | None:
    """When key `index` stopped signing: a later key activated (None: it still signs
    or has not signed yet)."""
    if "retired" in keys[index]:  # written by earlier versions
        return float(keys[index]["retired"])
    later = [_activates(k) for k in keys[index + 1 :] if _activates(k) <= now]
    return max(_activates(keys[index]), min(later)) if later else None


def read_keys(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        document = json.load(handle)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError(f"{path}: no keys in the JWK Set")
    for key in keys:
        if not isinstance(key, dict) or not key.get("kid") or key.get("use", "sig") != "sig":
            raise ValueError(f"{path}: every key needs a kid and use 'sig'")
        if key.get("alg") not in ALGORITHMS:
            raise ValueError(f"{path}: key {key.get('kid')} has an unsupported alg")
    return keys


def rotate(path: Path, *, max_token_ttl: int, activation_seconds: int) -> dict[str, Any]:
    """Add a new key that signs `activation_seconds` from now; drop keys retired long
    enough ago that every token they signed has expired."""
    ensure_keys_file(path)
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        keys = read_keys(path)
        now = int(time.time())
        key = new_key()
        key["activates"] = now + max(0, activation_seconds)
        keys.append(key)
        keep = []
        for index, old in enumerate(keys):
            retired = _retired_at(keys, index, now)
            if retired is None or now - retired <= max_token_ttl + 120:
                keep.append(old)
        tmp = _write_private(path, {"keys": keep})
        os.replace(tmp, path)
    return key


@dataclass(frozen=True)
class KeyRing:
    """One immutable snapshot of the key file: swap the whole object to reload."""

    current: ECKey
    current_kid: str
    verify_set: KeySet
    public_jwks: dict[str, Any]
    kids: frozenset[str]
    mtime_ns: int
    next_activation: float  # when a published key starts signing (inf: none pending)
    keys: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        mtime = path.stat().st_mtime_ns
        return cls.build(read_keys(path), mtime, time.time())

    @classmethod
    def build(cls, keys: list[dict[str, Any]], mtime_ns: int, now: float) -> KeyRing:
        current_data = keys[_signing_index(keys, now)]
        current = ECKey.import_key({k: v for k, v in current_data.items() if k not in _BOOKKEEPING})
        publics = [public_jwk(k) for k in keys]
        pending = [_activates(k) for k in keys if _activates(k) > now]
        return cls(
            current=current,
            current_kid=str(current_data["kid"]),
            verify_set=KeySet.import_key_set({"keys": publics}),
            public_jwks={"keys": publics},
            kids=frozenset(str(k["kid"]) for k in publics),
            mtime_ns=mtime_ns,
            next_activation=min(pending, default=math.inf),
            keys=tuple(keys),
        )


class KeyManager:
    """Holds the current KeyRing and reloads it when the file changes. Constructing it
    touches no file; `open()` (at start-up) creates the file if missing and loads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ring: KeyRing | None = None

    def open(self) -> KeyManager:
        """Create the key file with one key unless it exists, then load it (blocking file
        I/O: start-up only, `Services.open` runs it in a worker thread)."""
        ensure_keys_file(self.path)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        self._ring = KeyRing.load(self.path)
        return self

    @property
    def ring(self) -> KeyRing:
        ring = self._ring
        if ring is None:
            raise RuntimeError(f"the signing keys ({self.path}) are not loaded: open() first")
        return ring

    def signing(self) -> KeyRing:
        """The ring to sign with: switches to a published key once it activates."""
        ring = self.ring
        now = time.time()
        if now >= ring.next_activation:
            ring = self._ring = KeyRing.build(list(ring.keys), ring.mtime_ns, now)
        return ring

    def maybe_reload(self) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self.ring.mtime_ns:
            return False
        self._ring = KeyRing.load(self.path)
        return True
