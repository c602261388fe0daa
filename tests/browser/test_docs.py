"""/docs in a real browser: headless Chromium (Debian's), driven by Playwright, against
the real server. The page lists the operations, its Authorize button gets tokens from
the token endpoint (password and client-credentials flows), and "Try it out" works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, sync_playwright

from tests.conftest import PASSWORD
from tests.support.cli import run_cli
from tests.support.server import Server, run_server

pytestmark = pytest.mark.server
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ME = "#operations-users-getMe"
APPLY_OAUTH = "button[aria-label='Apply given OAuth2 credentials']"


def _install_chromium() -> str:
    """Debian's chromium, installed when missing; skip (with why) where it cannot be."""
    found = shutil.which("chromium")
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip("no chromium, and no apt-get to install it: the browser test needs one")
    if os.geteuid() != 0:
        pytest.skip("no chromium, and installing it (apt-get install chromium) needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"chromium could not be installed: {done.stderr.strip()[-300:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed no chromium binary")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return _install_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("docs")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            ignore_https_errors=True,  # the dev CA is trusted by this test only
        )
        yield context
        context.close()


def test_docs_render_authorize_and_try_it_out(
    server: Server, browser: BrowserContext, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.url, verify=server.ssl_context()) as api:
        r = api.post("/v1/auth/register", json={"username": "docs-user", "password": PASSWORD})
        assert r.status_code == 201, r.text
        spec = api.get("/openapi.json").json()
    created = run_cli(server.data_dir, "create-client", "docs-client", "--scope", "notes:read")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)

    page = browser.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    tokens: list[int] = []
    page.on(
        "response",
        lambda response: (
            tokens.append(response.status) if response.url.endswith("/v1/auth/token") else None
        ),
    )
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock, .errors-wrapper", timeout=30_000)
    text = page.inner_text("body")
    assert "Unable to render this definition" not in text
    expected = sum(len(methods) for methods in spec["paths"].values())
    assert page.locator(".opblock").count() == expected
    assert "/v1/users/me" in text and "/v1/notes/{note_id}" in text
    page.screenshot(path=str(tmp_path / "docs.png"))

    # Authorize: the OAuth2 password flow (a public client: no client credentials).
    page.click("button.authorize")
    page.fill("#oauth_username", "docs-user")
    page.fill("#oauth_password", PASSWORD)
    page.select_option("#password_type", "request-body")
    page.locator(APPLY_OAUTH).first.click()
    page.wait_for_selector("button[aria-label='Remove authorization']", timeout=10_000)
    assert tokens == [200]
    page.click("button.close-modal")

    # "Try it out" on GET /v1/users/me, from the page.
    page.click(f"{ME} .opblock-summary-control")
    status = f"{ME} .live-responses-table tbody .response-col_status"
    page.click(f"{ME} button.execute")
    page.wait_for_selector(status, timeout=10_000)
    assert page.inner_text(status).strip() == "200"
    body = page.inner_text(f"{ME} .live-responses-table tbody .response-col_description")
    assert '"username": "docs-user"' in body

    # The client-credentials flow, in the same dialog.
    page.click("button.authorize")
    page.locator("button[aria-label='Remove authorization']").first.click()
    page.fill("#client_id_clientCredentials", client["client_id"])
    page.fill("#client_secret_clientCredentials", client["client_secret"])
    page.locator(APPLY_OAUTH).last.click()
    page.wait_for_selector("button[aria-label='Remove authorization']", timeout=10_000)
    assert tokens == [200, 200]
    page.click("button.close-modal")
    page.click(f"{ME} button.execute")
    page.wait_for_function(
        "sel => document.querySelector(sel)?.innerText.includes('client_id')",
        arg=f"{ME} .live-responses-table tbody .response-col_description",
        timeout=10_000,
    )
    assert page.inner_text(status).strip() == "200"
    body = page.inner_text(f"{ME} .live-responses-table tbody .response-col_description")
    assert client["client_id"] in body and "client_secret" not in body
    page.screenshot(path=str(tmp_path / "try-it-out.png"), full_page=True)
    assert problems == []
    page.close()
