"""A page on another site cannot get its visitors' address blocked, and claiming to be
such a page lets no guesser off (security/crosssite.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart import Quart

from service import create_app
from tests.conftest import PASSWORD, SettingsFactory, client_for, svc_of

VISITOR = "198.51.100.20"
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
IMG = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


@pytest.fixture
async def app(settings_factory: SettingsFactory) -> AsyncIterator[Quart]:
    application = create_app(
        settings_factory(
            block_after="3/minute",
            block_seconds=600,
            rate_limit_login="100/minute;1000/hour",
            cors_origins="https://app.example",
        )
    )
    async with application.test_app():
        async with client_for(application, "192.0.2.200") as c:
            r = await c.post("/v1/auth/register", json={"username": "bob", "password": PASSWORD})
            assert r.status_code == 201, r.text
        yield application


def count_checks(app: Quart, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    svc = svc_of(app)
    real = svc.passwords.verify_or_dummy
    checked = [0]

    async def counted(stored: str | None, password: str) -> bool:
        checked[0] += 1
        return await real(stored, password)

    monkeypatch.setattr(svc.passwords, "verify_or_dummy", counted)
    return checked


def guess(password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": "bob", "password": password}


async def test_a_page_elsewhere_cannot_get_its_visitors_blocked(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_checks(app, monkeypatch)
    async with client_for(app, VISITOR) as browser:
        for _ in range(20):  # <img src="https://api/v1/notes">
            assert (await browser.get("/v1/notes", headers=IMG)).status_code == 401
        for i in range(20):  # no-cors fetches of paths that are no route, no headers at all
            assert (await browser.get(f"/v1/x{i}")).status_code == 404
            r = await browser.get(f"/v1/x{i}", headers={"Sec-Fetch-Site": "same-site"})
            assert r.status_code == 404
        for i in range(20):  # a hidden form posting wrong passwords
            r = await browser.post("/v1/auth/token", data=guess(f"wrong-{i}-pass"), headers=EVIL)
            assert r.status_code == 403, r.text
            assert r.headers["content-type"] == "application/problem+json"
        # a browser without fetch metadata still sends Origin with a form post
        r = await browser.post(
            "/v1/auth/token", data=guess("wrong-pass-old"), headers={"Origin": "null"}
        )
        assert r.status_code == 403
        assert checked[0] == 0  # no password was checked for any of them
        # the visitor, from the same address, is not blocked and logs in
        r = await browser.post("/v1/auth/token", data=guess(PASSWORD))
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = await browser.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        # from this service's own pages (the docs), same-origin, logins work too
        r = await browser.post(
            "/v1/auth/token",
            data=guess(PASSWORD),
            headers={"Origin": "https://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 200, r.text


async def test_forged_browser_headers_let_no_guesser_off(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_checks(app, monkeypatch)
    async with client_for(app, "203.0.113.50") as attacker:  # password guesses: no check at all
        for i in range(5):
            r = await attacker.post("/v1/auth/token", data=guess(f"guess-{i}-pass"), headers=EVIL)
            assert r.status_code == 403
        assert checked[0] == 0
    async with client_for(app, "203.0.113.51") as attacker:  # forged tokens still count
        codes = [
            (
                await attacker.get(
                    "/v1/notes", headers={**IMG, "Authorization": f"Bearer forged.tok.{i}"}
                )
            ).status_code
            for i in range(6)
        ]
        assert codes[:4] == [401] * 4 and codes[-1] == 403, codes
    async with client_for(app, "203.0.113.52") as attacker:  # an allowed origin is no excuse
        allowed = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
        codes = [
            (
                await attacker.post(
                    "/v1/auth/token", data=guess(f"g-{i}-password"), headers=allowed
                )
            ).status_code
            for i in range(6)
        ]
        assert codes[:4] == [400] * 4 and codes[-1] == 403, codes
    async with client_for(app, "203.0.113.53") as scanner:  # plain credential-less 401s count
        codes = [(await scanner.get("/v1/notes")).status_code for _ in range(6)]
        assert codes[:4] == [401] * 4 and codes[-1] == 403, codes


async def test_cross_site_form_posts_cannot_spend_the_visitors_login_budget(
    settings_factory: SettingsFactory,
) -> None:
    app = create_app(settings_factory(rate_limit_login="3/minute;100/hour"))
    async with app.test_app():
        async with client_for(app, "192.0.2.200") as c:
            r = await c.post("/v1/auth/register", json={"username": "bob", "password": PASSWORD})
            assert r.status_code == 201
        async with client_for(app, VISITOR) as browser:
            for i in range(10):
                r = await browser.post("/v1/auth/token", data=guess(f"w-{i}-pass"), headers=EVIL)
                assert r.status_code == 403
            assert (await browser.post("/v1/auth/token", data=guess(PASSWORD))).status_code == 200
