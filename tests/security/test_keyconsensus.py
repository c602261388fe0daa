"""Replicas given different key files are detected: a warning once and a metric."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from service import create_app
from tests.api.conftest import backend  # noqa: F401 - SQLite and PostgreSQL
from tests.conftest import svc_of


def _events(capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    return [r for r in (json.loads(x) for x in lines if x[:1] == "{") if r["event"] == name]


async def test_different_key_files_are_reported_once_until_fixed(
    settings_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = settings_factory()
    second = settings_factory(signing_keys_file=tmp_path / "other" / "jwks.json")
    a, b = create_app(first), create_app(second)
    async with a.test_app(), b.test_app():
        ka, kb = svc_of(a).key_consensus, svc_of(b).key_consensus
        assert svc_of(a).keys.ring.kids != svc_of(b).keys.ring.kids
        assert not await ka.check()  # b has not published yet
        assert not await kb.check()  # b sees a difference once: not enough (a rotation?)
        assert not await ka.check()
        capsys.readouterr()
        assert await kb.check() and await ka.check()  # the difference lasts: reported
        assert await ka.check() and await kb.check()  # still mismatched: no second warning
        warnings = _events(capsys, "keys.mismatch")
        assert len(warnings) == 2 and {w["level"] for w in warnings} == {"WARNING"}
        assert kb.replica in warnings[0]["replicas"] or ka.replica in warnings[0]["replicas"]
        # the operator gives b the shared key file
        shutil.copy(first.keys_file, second.keys_file)
        assert svc_of(b).keys.maybe_reload()
        assert not await kb.check() and not await ka.check()
        assert len(_events(capsys, "keys.consistent")) == 2


async def test_the_same_key_file_never_warns(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory()
    a, b = create_app(settings), create_app(settings)
    async with a.test_app(), b.test_app():
        for _ in range(3):
            assert not await svc_of(a).key_consensus.check()
            assert not await svc_of(b).key_consensus.check()
    assert not _events(capsys, "keys.mismatch")


async def test_mismatch_metric(settings_factory: Any, tmp_path: Path) -> None:
    app = create_app(settings_factory())
    other = create_app(settings_factory(signing_keys_file=tmp_path / "k2" / "jwks.json"))
    async with app.test_app(), other.test_app():
        svc = svc_of(app)
        assert b"portcullis_key_set_mismatch 0.0" in svc.metrics.render()[0]
        await svc_of(other).key_consensus.check()
        for _ in range(2):
            await svc.key_consensus.check()
        assert b"portcullis_key_set_mismatch 1.0" in svc.metrics.render()[0]
