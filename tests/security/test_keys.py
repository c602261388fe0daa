"""Signing key file: race-free creation, rotation, retirement; dev certificates."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from service.devcerts import make_dev_certs
from service.security.keys import KeyManager, KeyRing, ensure_keys_file, rotate
from service.workers import group_folder


def test_concurrent_first_start_creates_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "jwks.json"
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: ensure_keys_file(path), range(32)))
    rings = [KeyRing.load(path) for _ in range(3)]
    assert len({r.current_kid for r in rings}) == 1
    assert len(json.loads(path.read_text())["keys"]) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_public_jwks_never_has_private_members(tmp_path: Path) -> None:
    manager = KeyManager(tmp_path / "jwks.json").open()
    for key in manager.ring.public_jwks["keys"]:
        assert "d" not in key and key["use"] == "sig" and key["alg"] == "ES256"


def test_rotation_retires_keys_after_their_tokens_expire(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    manager = KeyManager(path).open()
    first = manager.ring.current_kid
    rotate(path, max_token_ttl=600, activation_seconds=0)
    assert manager.maybe_reload() and manager.ring.current_kid != first
    assert first in manager.ring.kids  # still verifies the tokens it signed
    document = json.loads(path.read_text())
    document["keys"][1]["activates"] = int(time.time()) - 3600  # took over an hour ago
    path.write_text(json.dumps(document))
    rotate(path, max_token_ttl=600, activation_seconds=0)
    manager.maybe_reload()
    assert first not in manager.ring.kids and len(manager.ring.kids) == 2
    assert not manager.maybe_reload()  # unchanged file: nothing to do


def test_rotated_key_is_published_before_it_signs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jwks.json"
    manager = KeyManager(path).open()
    first = manager.ring.current_kid
    new = rotate(path, max_token_ttl=600, activation_seconds=600)
    assert manager.maybe_reload()
    published = {k["kid"] for k in manager.ring.public_jwks["keys"]}
    assert published == {first, new["kid"]}
    assert "activates" not in manager.ring.public_jwks["keys"][1]
    assert manager.signing().current_kid == first  # not yet: verifiers may not know it
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    assert manager.signing().current_kid == new["kid"]
    # the first key stays published until its tokens have expired, then goes
    monkeypatch.setattr(time, "time", lambda: later + 600 + 121)
    rotate(path, max_token_ttl=600, activation_seconds=600)
    manager.maybe_reload()
    assert first not in manager.ring.kids and new["kid"] in manager.ring.kids


def test_pending_key_survives_another_rotation(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    manager = KeyManager(path).open()
    first = manager.ring.current_kid
    pending = rotate(path, max_token_ttl=60, activation_seconds=600)
    urgent = rotate(path, max_token_ttl=60, activation_seconds=0)
    manager.maybe_reload()
    assert manager.signing().current_kid == urgent["kid"]
    assert {first, pending["kid"], urgent["kid"]} == manager.ring.kids


def test_dev_certificates(tmp_path: Path) -> None:
    paths = make_dev_certs(tmp_path)
    for name in ("key", "ca_key"):
        assert paths[name].stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_stale_process_group_folders_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "metrics" / "999999999"
    dead.mkdir(parents=True)
    (dead / "counter_999999999.db").write_bytes(b"stale")
    folder = group_folder(tmp_path / "metrics")
    assert folder.exists() and not dead.exists()
