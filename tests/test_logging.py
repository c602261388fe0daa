"""JSON log lines: shape, access line, security events, redaction, no forged lines."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from service import create_app
from service.logging import REDACTED, redact_value
from tests.conftest import PASSWORD, bearer, client_for, client_token


def lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # every line must be one JSON object
    return out


def test_redaction_filter() -> None:
    jwt_like = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    event = {
        "event": "x",
        "password": "hunter2",
        "client_secret": "s3cret",
        "Authorization": "Bearer abc.def",
        "headers": {"cookie": "a=b", "x-ok": "fine"},
        "message": f"token {jwt_like} and Bearer opaque-token-123 and Basic dXNlcjpwYXNz",
        "url": "postgresql://user:pw@db/x",
        "query": "grant_type=password&password=hunter2&refresh_token=r1",
        "reason": "bad_password",
    }
    out = redact_value(event)
    text = json.dumps(out)
    for secret in (
        "hunter2",
        "s3cret",
        "abc.def",
        "a=b",
        jwt_like,
        "opaque-token-123",
        "dXNlcjpwYXNz",
        ":pw@",
        "r1",
    ):
        assert secret not in text, secret
    assert out["password"] == REDACTED and out["headers"]["x-ok"] == "fine"
    assert out["reason"] == "bad_password" and out["event"] == "x"


async def test_full_flow_logs_are_json_and_never_hold_secrets(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings_factory())
    async with app.test_app(), client_for(app) as c:
        await c.post("/v1/auth/register", json={"username": "logme", "password": PASSWORD})
        r = await c.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "logme", "password": PASSWORD},
        )
        tokens = r.json()
        await c.get(
            "/v1/users/me", headers=bearer(tokens["access_token"]) | {"Cookie": "sess=cookie-value"}
        )
        await c.get("/v1/admin/users", headers=bearer(tokens["access_token"]))
        await c.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "logme", "password": "Wrong-password-9"},
        )
        await c.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        await c.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        await c.get("/v1/users/me", headers=bearer(tokens["access_token"] + "x"))
        client, _ = await client_token(app, c, ["notes:read"], name="c")
        await c.post("/v1/auth/revoke", data={"token": tokens["refresh_token"]})
        await c.get(
            "/nope%0A%7B%22event%22:%22forged%22%7D",
            headers={"User-Agent": 'x\n{"event": "forged"}'},
        )
    out = capsys.readouterr().out
    records = lines(out)
    for secret in (
        PASSWORD,
        "Wrong-password-9",
        tokens["access_token"],
        tokens["refresh_token"],
        client.client_secret,
        "cookie-value",
    ):
        assert secret not in out
    for record in records:
        assert {"ts", "level", "event"} <= set(record), record
        assert record["ts"].endswith("Z")
    assert all(r["event"] != "forged" for r in records)
    assert any(r.get("status") == 400 and "forged" in r.get("path", "") for r in records)
    access = [r for r in records if r["event"] == "http.request"]
    assert len(access) == 11
    for rec in access:
        assert {
            "method",
            "path",
            "route",
            "status",
            "duration_ms",
            "client_ip",
            "principal",
            "request_id",
        } <= set(rec)
        assert "?" not in rec["path"]
    me = next(r for r in access if r["path"] == "/v1/users/me" and r["status"] == 200)
    assert me["principal"] and me["route"] == "/v1/users/me" and me["client_ip"] == "203.0.113.10"
    by_event = {r["event"]: r for r in records}
    expected = {
        "auth.login_failed": "WARNING",
        "auth.refresh_reuse": "ERROR",
        "auth.invalid_token": "WARNING",
        "authz.denied": "WARNING",
    }
    for event, level in expected.items():
        assert by_event[event]["level"] == level, event
        assert by_event[event]["reason"] and by_event[event]["client_ip"] == "203.0.113.10"
        assert by_event[event]["request_id"]
    assert by_event["auth.refresh_reuse"]["principal"] == me["principal"]


async def test_request_id_bound_for_the_whole_request(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings_factory())
    async with app.test_app(), client_for(app) as c:
        await c.get(
            "/v1/users/me",
            headers={"Authorization": "Bearer garbage.garbage.garbage", "X-Request-ID": "trace-me"},
        )
    records = [r for r in lines(capsys.readouterr().out) if r.get("request_id") == "trace-me"]
    assert {r["event"] for r in records} >= {"auth.invalid_token", "http.request"}


def test_stdlib_records_become_json(capsys: pytest.CaptureFixture[str]) -> None:
    from service.logging import configure_logging

    configure_logging("INFO")
    logging.getLogger("hypercorn.error").info(
        "Running on https://127.0.0.1:8443 (CTRL + C to quit)"
    )
    records = lines(capsys.readouterr().out)
    assert records[-1]["event"].startswith("Running on") and records[-1]["level"] == "INFO"


async def test_unhandled_error_traceback_only_in_log(
    settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.security.authn import public

    app = create_app(settings_factory())

    @public
    async def boom() -> str:
        raise ValueError("kaboom-detail")

    app.add_url_rule("/boom", "boom", boom)
    async with app.test_app(), client_for(app) as c:
        r = await c.get("/boom")
    assert r.status_code == 500 and "kaboom" not in r.text
    out = capsys.readouterr().out
    assert "kaboom-detail" in out and "Traceback" in out


def test_the_secret_pre_check_agrees_with_its_expression() -> None:
    import random

    from service.logging import _SUSPECT, _suspect

    cases = [
        "/v1/users/me",
        "GET\x00/v1/notes/n_1\x00127.0.0.1",
        "eyJhbGciOi",
        "EYJ",
        "Bearer abc",
        "bAsIc x",
        "postgresql://u:p@h/db",
        "a=b",
        "ba\u017fic x",  # long s: the expression ignores case beyond ASCII
        "\u212aeyj",  # Kelvin sign, then a match
        "BEARER\u00e9",
        "",
    ]
    alphabet = "abceijrsyEBJY:/=\u017f\u212a\u0130 ._-"
    rng = random.Random(7)
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(5000)]
    for text in cases:
        assert _suspect(text) == (_SUSPECT.search(text) is not None), text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_format_renders_the_same_fields_for_people() -> None:
    from service.context import RequestFacts, current_request
    from service.logging import access_line, configure_logging, get_logger

    stream = _Terminal()
    configure_logging("INFO", stream=stream, fmt="console")
    token = current_request.set(RequestFacts("rid-7", "4bf92f3577b34da6a3ce929d0e0e4736", "::1"))
    try:
        access_line(
            method="GET",
            path="/v1/users/me",
            route="/v1/users/me",
            status=200,
            seconds=0.001,
            client_ip="::1",
            principal=None,
        )
        get_logger("portcullis.x").warning("login", password="hunter2", note="Bearer abc.def")
    finally:
        current_request.reset(token)
        configure_logging("INFO")
    text = stream.getvalue()
    first, second = text.splitlines()[:2]
    assert not first.startswith("{") and "http.request" in first and "warning" in second
    assert "trace_id" in first and "4bf92f3577b34da6a3ce929d0e0e4736" in first
    assert "rid-7" in first and "status" in first
    assert "hunter2" not in text and "abc.def" not in text and REDACTED in text


def test_the_format_json_unless_a_person_reads_along_and_always_in_production() -> None:
    from pydantic import ValidationError

    from service.config import Settings
    from service.logging import choose_format

    assert choose_format(None, "development", _Terminal()) == "console"
    assert choose_format(None, "development", io.StringIO()) == "json"
    assert choose_format("json", "development", _Terminal()) == "json"
    assert choose_format("console", "development", io.StringIO()) == "console"
    assert choose_format(None, "production", _Terminal()) == "json"
    assert Settings(_env_file=None, log_format="CONSOLE").log_format == "console"
    with pytest.raises(ValidationError, match="log_format"):
        Settings(_env_file=None, env="production", log_format="console")


def test_start_up_says_where_the_docs_are(capsys: pytest.CaptureFixture[str]) -> None:
    from service.logging import configure_logging

    configure_logging("INFO")
    logging.getLogger("hypercorn.error").info(
        "Running on https://127.0.0.1:9443 (CTRL + C to quit)"
    )
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:9080 (CTRL + C to quit)")
    https, http = lines(capsys.readouterr().out)[-2:]
    assert https["docs"] == "https://127.0.0.1:9443/docs" and "docs" not in http


def test_the_one_pass_json_line_is_the_two_step_render() -> None:
    """The renderer's one-pass path gives the same line as shaping then encoding."""
    from service import logrender as service_logrender
    from service.context import RequestFacts, current_request

    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    events: list[dict[str, Any]] = [
        {"event": "http.request", "method": "GET", "status": 200, "duration_ms": 1.5},
        {"event": "x", "path": f"/v1/{jwt}", "principal": None, "logger_name": "a"},
        {"event": "x", "password": "hunter2", "logger_name": "a"},
        {"event": "x", "nested": {"token": "t", "ok": [1, 2]}, "logger_name": "a"},
        {"event": "x", "ratio": float("nan"), "flag": True, "logger_name": "a"},
        {"event": "x", "request_id": "mine", "pid": 7, "logger_name": "a"},
        {"event": "x", "level": "forged", "ts": "then", "logger_name": "a"},
        {"event": 'é\n"', "n": 10**30, "logger_name": "a"},
    ]
    for facts in (RequestFacts("rid", "4bf92f3577b34da6a3ce929d0e0e4736", "::1"), None):
        token = current_request.set(facts)
        try:
            for event in events:
                for method in ("info", "warn", "exception"):
                    one = service_logrender._json_line(None, method, dict(event))
                    shaped = service_logrender._shape(None, method, dict(event))
                    two = service_logrender._render_json(None, method, shaped)
                    first, second = json.loads(one), json.loads(two)
                    first.pop("ts"), second.pop("ts")
                    assert list(first.items()) == list(second.items()), event
                    assert "hunter2" not in one and jwt not in one and "\n" not in one
        finally:
            current_request.reset(token)
