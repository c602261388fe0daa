"""Notes: CRUD, object-level authorization, mass assignment, pagination, ETags,
idempotency and concurrent updates."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.conftest import bearer, user_token


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "alice"))


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await user_token(client, "bob"))


async def create(
    client: httpx.AsyncClient, who: dict[str, str], **body: object
) -> dict[str, object]:
    payload = {"title": "t", "body": "b", "tags": []} | body
    r = await client.post("/v1/notes", json=payload, headers=who)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_crud_roundtrip(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    r = await client.post(
        "/v1/notes",
        json={"title": "Hello", "body": "line\n\ttab", "tags": ["a", "b-2"]},
        headers=alice,
    )
    assert r.status_code == 201
    note = r.json()
    assert set(note) == {"id", "title", "body", "tags", "created_at", "updated_at", "version"}
    assert r.headers["location"] == f"/v1/notes/{note['id']}"
    assert r.headers["etag"] == '"1"'
    uuid.UUID(note["id"])
    r = await client.get(f"/v1/notes/{note['id']}", headers=alice)
    assert r.status_code == 200 and r.json() == note and r.headers["etag"] == '"1"'
    r = await client.get(f"/v1/notes/{note['id']}", headers=alice | {"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == '"1"'
    r = await client.get(f"/v1/notes/{note['id']}", headers=alice | {"If-None-Match": '"7", "8"'})
    assert r.status_code == 200
    r = await client.patch(f"/v1/notes/{note['id']}", json={"title": "Bye"}, headers=alice)
    assert r.status_code == 200
    assert r.json()["title"] == "Bye" and r.json()["body"] == "line\n\ttab"
    assert r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    r = await client.delete(f"/v1/notes/{note['id']}", headers=alice)
    assert r.status_code == 204 and r.content == b""
    assert "content-type" not in r.headers and "content-length" not in r.headers
    assert (await client.get(f"/v1/notes/{note['id']}", headers=alice)).status_code == 404


async def test_bola_every_route_gives_identical_404(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    note = await create(client, alice, title="secret")
    missing = str(uuid.uuid4())
    for note_id in (note["id"], missing, "not-a-uuid", "../../admin"):
        answers = [
            await client.get(f"/v1/notes/{note_id}", headers=bob),
            await client.patch(f"/v1/notes/{note_id}", json={"title": "pwned"}, headers=bob),
            await client.delete(f"/v1/notes/{note_id}", headers=bob),
        ]
        for r in answers:
            assert r.status_code == 404, (note_id, r.text)
            body = r.json()
            body.pop("request_id"), body.pop("trace_id")  # per request
            assert body == {
                "type": "https://portcullis.dev/problems/not-found",
                "title": "Not Found",
                "status": 404,
                "detail": "No such resource.",
            }
    listed = (await client.get("/v1/notes", headers=bob)).json()
    assert listed["items"] == []
    r = await client.get(f"/v1/notes/{note['id']}", headers=alice)
    assert r.json()["title"] == "secret" and r.json()["version"] == 1


async def test_mass_assignment_and_bad_bodies(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    note = await create(client, alice)
    bad_creates = [
        {"title": "x", "id": str(uuid.uuid4())},
        {"title": "x", "owner_id": "someone"},
        {"title": "x", "version": 99},
        {"title": "x", "created_at": "2000-01-01T00:00:00Z"},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "x", "body": "y" * 10001},
        {"title": "x", "tags": ["UPPER"]},
        {"title": "x", "tags": [f"t{i}" for i in range(11)]},
        {"title": "x", "tags": ["a" * 33]},
        {"title": "bad\x00nul"},
        {"title": "bell\x07"},
        {"title": 5},
        {"title": "x", "tags": "notalist"},
        {"body": "no title"},
    ]
    for body in bad_creates:
        r = await client.post("/v1/notes", json=body, headers=alice)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert isinstance(r.json()["errors"], list) and r.json()["errors"]
    r = await client.post(
        "/v1/notes",
        content=b'{"title": "lone \\ud800 surrogate"}',
        headers=alice | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    bad_patches = [{}, {"version": 7}, {"title": None}, {"id": "x"}, {"owner_id": "x"}]
    for body in bad_patches:
        r = await client.patch(f"/v1/notes/{note['id']}", json=body, headers=alice)
        assert r.status_code == 422, (body, r.text)
    listed = (await client.get("/v1/notes", headers=alice)).json()["items"]
    assert len(listed) == 1 and listed[0] == note


async def test_pagination_newest_first_and_stable_under_inserts(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    ids = [(await create(client, alice, title=f"n{i}"))["id"] for i in range(7)]
    r = await client.get("/v1/notes?limit=3", headers=alice)
    page1 = r.json()
    assert [n["id"] for n in page1["items"]] == ids[::-1][:3]
    # New notes arriving between pages never shift or repeat the next page.
    await create(client, alice, title="late")
    page2 = (
        await client.get(f"/v1/notes?limit=3&cursor={page1['next_cursor']}", headers=alice)
    ).json()
    assert [n["id"] for n in page2["items"]] == ids[::-1][3:6]
    page3 = (
        await client.get(f"/v1/notes?limit=3&cursor={page2['next_cursor']}", headers=alice)
    ).json()
    assert [n["id"] for n in page3["items"]] == ids[::-1][6:]
    assert page3["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "limit=abc", "tag=UP"):
        r = await client.get(f"/v1/notes?{bad}", headers=alice)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["loc"][-1] in ("limit", "tag")
    for bad in ("cursor=garbage", "cursor=W10"):  # not a cursor we issued: unparseable
        r = await client.get(f"/v1/notes?{bad}", headers=alice)
        assert r.status_code == 400, (bad, r.text)


async def test_tag_filter(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    a = await create(client, alice, title="a", tags=["work"])
    await create(client, alice, title="b", tags=["home"])
    c = await create(client, alice, title="c", tags=["work", "home"])
    await create(client, bob, title="bob's", tags=["work"])
    items = (await client.get("/v1/notes?tag=work", headers=alice)).json()["items"]
    assert [n["id"] for n in items] == [c["id"], a["id"]]
    r = await client.patch(f"/v1/notes/{a['id']}", json={"tags": ["home"]}, headers=alice)
    assert r.status_code == 200
    items = (await client.get("/v1/notes?tag=work&limit=1", headers=alice)).json()
    assert [n["id"] for n in items["items"]] == [c["id"]] and items["next_cursor"] is None


async def test_if_match(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    note = await create(client, alice)
    url = f"/v1/notes/{note['id']}"
    r = await client.patch(url, json={"title": "v2"}, headers=alice | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await client.patch(url, json={"title": "stale"}, headers=alice | {"If-Match": '"1"'})
    assert r.status_code == 412 and r.headers["content-type"] == "application/problem+json"
    r = await client.delete(url, headers=alice | {"If-Match": '"1"'})
    assert r.status_code == 412
    assert (await client.get(url, headers=alice)).json()["title"] == "v2"
    r = await client.delete(url, headers=alice | {"If-Match": '"2"'})
    assert r.status_code == 204


async def test_if_match_is_a_list_compared_strongly(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """RFC 9110 §13.1.1: any listed tag may match, `*` matches a current note, and a
    weak tag never matches (strong comparison), on PATCH and DELETE alike."""
    url = f"/v1/notes/{(await create(client, alice))['id']}"

    async def patch(if_match: str | list[str], title: str) -> httpx.Response:
        headers = [("Authorization", alice["Authorization"])]
        for line in [if_match] if isinstance(if_match, str) else if_match:
            headers.append(("If-Match", line))
        return await client.patch(url, json={"title": title}, headers=headers)

    assert (await patch('"7", "1"', "second of a list")).status_code == 200  # version 1 → 2
    assert (await patch(['"9"', '"2"'], "second field line")).status_code == 200  # → 3
    assert (await patch(' ,"5", ,"3" ,', "empty members")).status_code == 200  # → 4
    for refused in ('W/"4"', 'W/"4", "9"', '"04"', "4", '"4', '*, "4"', '"4" "4"', ""):
        r = await patch(refused, "weak or invalid")
        assert r.status_code == 412, (refused, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get(url, headers=alice)).json()["version"] == 4
    assert (await patch("*", "any")).status_code == 200  # → 5
    r = await client.delete(url, headers=alice | {"If-Match": 'W/"5"'})
    assert r.status_code == 412
    r = await client.delete(url, headers=alice | {"If-Match": '"1", "2", "5"'})
    assert r.status_code == 204
    assert (await patch("*", "gone")).status_code == 404
    note = await create(client, alice)
    r = await client.delete(f"/v1/notes/{note['id']}", headers=alice | {"If-Match": "*"})
    assert r.status_code == 204


async def test_concurrent_patches_exactly_one_wins_per_version(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    note = await create(client, alice)
    url = f"/v1/notes/{note['id']}"
    results = await asyncio.gather(
        *(
            client.patch(url, json={"body": f"writer {i}"}, headers=alice | {"If-Match": '"1"'})
            for i in range(25)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(412) == 24, codes
    final = (await client.get(url, headers=alice)).json()
    winner = next(r for r in results if r.status_code == 200).json()
    assert final == winner and final["version"] == 2


async def test_concurrent_patches_without_if_match_lose_nothing(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    note = await create(client, alice)
    url = f"/v1/notes/{note['id']}"
    results = await asyncio.gather(
        *(client.patch(url, json={"body": f"w{i}"}, headers=alice) for i in range(10))
    )
    assert all(r.status_code == 200 for r in results)
    versions = sorted(r.json()["version"] for r in results)
    assert versions == list(range(2, 12))  # every update applied, one after another


async def test_idempotency_key(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    body = {"title": "pay", "body": "once", "tags": ["x"]}
    key = {"Idempotency-Key": "order-42"}
    first = await client.post("/v1/notes", json=body, headers=alice | key)
    again = await client.post("/v1/notes", json=body, headers=alice | key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["location"] == again.headers["location"]
    assert len((await client.get("/v1/notes", headers=alice)).json()["items"]) == 1
    r = await client.post("/v1/notes", json=body | {"body": "twice"}, headers=alice | key)
    assert r.status_code == 422
    # keys are per principal: bob's identical key is his own
    r = await client.post("/v1/notes", json=body, headers=bob | key)
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]
    r = await client.post("/v1/notes", json=body, headers=alice | {"Idempotency-Key": "x" * 300})
    assert r.status_code == 422


async def test_concurrent_idempotent_creates_make_one_note(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body = {"title": "once"}
    results = await asyncio.gather(
        *(
            client.post("/v1/notes", json=body, headers=alice | {"Idempotency-Key": "k"})
            for _ in range(8)
        )
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert len((await client.get("/v1/notes", headers=alice)).json()["items"]) == 1


async def test_scopes_enforced(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/notes")
    assert r.status_code == 401
    await user_token(client, "reader")
    from tests.conftest import login

    read_only = bearer((await login(client, "reader", scope="notes:read"))["access_token"])
    assert (await client.get("/v1/notes", headers=read_only)).status_code == 200
    r = await client.post("/v1/notes", json={"title": "x"}, headers=read_only)
    assert r.status_code == 403


async def test_text_is_normalised(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    decomposed = "Cafe\u0301"  # "e" + combining acute
    r = await client.post(
        "/v1/notes", json={"title": decomposed, "body": "one\r\ntwo\rthree"}, headers=alice
    )
    assert r.status_code == 201
    assert r.json()["title"] == "Caf\u00e9" and r.json()["body"] == "one\ntwo\nthree"
    # U+2ADC has a two-character NFC form: 200 of them make 400 stored characters
    r = await client.post("/v1/notes", json={"title": "\u2adc" * 200}, headers=alice)
    assert r.status_code == 422
