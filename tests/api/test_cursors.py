"""Page cursors from the attacker's side: every list refuses a cursor the service did
not issue with 400, on SQLite and PostgreSQL, without a 5xx or an ERROR log line."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from quart import Quart

from service.models.common import decode_cursor, encode_cursor
from tests.conftest import bearer, make_admin, user_token

BIGINT_MAX = 2**63 - 1


def b64(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Cursors that are not ours, for lists paged by (integer, text): notes, users, blocks.
PAIR_CURSORS = [
    b64(json.dumps([2**64, "x"])),  # beyond 64 bits: 500 on SQLite, 503 on PostgreSQL
    b64(json.dumps([2**63, "x"])),  # just beyond BIGINT
    b64(json.dumps([10**40, "x"])),
    b64(json.dumps([-1, "x"])),
    b64(json.dumps([-(2**70), "x"])),
    "!!!!",  # not base64url
    "eyJ hIjog",  # a space inside
    "A" * 201,  # longer than any cursor we issue
    "",
    b64("[1,"),  # truncated JSON
    b64(b"\xff\xfe\x00["),  # not UTF-8
    b64("{not json"),
    b64(json.dumps({"created": 1, "id": "x"})),
    b64(json.dumps([1.5, "x"])),
    b64(json.dumps(["1", "x"])),
    b64(json.dumps([True, "x"])),
    b64(json.dumps([None, "x"])),
    b64(json.dumps([1, 2])),
    b64(json.dumps([1])),
    b64(json.dumps([1, "x", 3])),
    b64(json.dumps([])),
    b64('[NaN,"x"]'),
    b64('[Infinity,"x"]'),
    b64('[-Infinity,"x"]'),
    b64(json.dumps([[[[1]]], "x"])),
    b64(json.dumps([1, ["x"]])),
    b64("[" * 140),  # deep nesting
    b64('[1,"\\u0000"]'),  # NUL: PostgreSQL text cannot hold it
    b64('[1,"\\ud800"]'),  # a lone surrogate: cannot be encoded for the database
    b64('[1,"a\\nb"]'),
    b64(json.dumps([1, ""])),
    b64(json.dumps([1, "x" * 65])),
    b64('[1, "x"]'),  # not the compact form we issue
    b64('[1,"x"]') + "==",  # padded
    b64('[01,"x"]'),
    b64('[1e3,"x"]'),
]
AUDIT_CURSORS = [
    b64(json.dumps([2**64])),
    b64(json.dumps([2**63])),
    b64(json.dumps([-1])),
    b64(json.dumps(["1"])),
    b64(json.dumps([1, "x"])),
    b64(json.dumps([1.0])),
    b64("[NaN]"),
    b64(json.dumps(1)),
    "%%%",
]


def assert_refused(r: httpx.Response, cursor: str) -> None:
    assert r.status_code == 400, (cursor, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json", cursor
    body = r.json()
    assert body["status"] == 400 and body["type"].endswith("/bad-request"), body


def no_error_lines(out: str) -> None:
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert records, "no log lines were captured"
    bad = [r for r in records if r.get("level") in ("ERROR", "CRITICAL")]
    assert not bad, bad
    assert not [r for r in records if r.get("event") == "dependency.unavailable"]


async def test_every_paged_list_refuses_foreign_cursors(
    app: Quart, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    user = bearer(await user_token(client, "pager"))
    admin = bearer(await make_admin(app, client))
    capsys.readouterr()
    pair_lists = ("/v1/notes", "/v1/admin/users", "/v1/admin/blocks")
    for path in pair_lists:
        who = user if path == "/v1/notes" else admin
        for cursor in PAIR_CURSORS:
            assert_refused(await client.get(path, params={"cursor": cursor}, headers=who), cursor)
    for cursor in AUDIT_CURSORS + PAIR_CURSORS[:5]:
        r = await client.get("/v1/admin/audit", params={"cursor": cursor}, headers=admin)
        assert_refused(r, cursor)
    no_error_lines(capsys.readouterr().out)


async def test_cursors_at_the_edge_of_the_range_still_page(
    app: Quart, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    user = bearer(await user_token(client, "edge"))
    admin = bearer(await make_admin(app, client))
    r = await client.post("/v1/notes", json={"title": "t"}, headers=user)
    assert r.status_code == 201
    capsys.readouterr()
    top, bottom = encode_cursor(BIGINT_MAX, "~" * 64), encode_cursor(0, "!")
    cases: list[tuple[str, dict[str, str], str, int]] = [
        ("/v1/notes", user, top, 1),
        ("/v1/notes", user, bottom, 0),
        ("/v1/admin/users", admin, top, 2),
        ("/v1/admin/blocks", admin, top, 0),
        ("/v1/admin/audit", admin, encode_cursor(BIGINT_MAX), -1),
        ("/v1/admin/audit", admin, encode_cursor(0), 0),
    ]
    for path, who, cursor, count in cases:
        r = await client.get(path, params={"cursor": cursor}, headers=who)
        assert r.status_code == 200, (path, cursor, r.text)
        items: list[Any] = r.json()["items"]
        assert count == -1 or len(items) == count, (path, items)
    no_error_lines(capsys.readouterr().out)


def test_codec_round_trip_and_canonical_form() -> None:
    cursor = encode_cursor(1_700_000_000_000_000, "0b6f6c1e-8f1c-4d8e-9d5e-7a1f0c9b2e11")
    assert decode_cursor(cursor, (int, str)) == (
        1_700_000_000_000_000,
        "0b6f6c1e-8f1c-4d8e-9d5e-7a1f0c9b2e11",
    )
    assert decode_cursor(encode_cursor(7), (int,)) == (7,)
    for bad in PAIR_CURSORS:
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(bad, (int, str))
