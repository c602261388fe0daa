"""The side-by-side part of `make bench`: bare Quart and the service's paths, measured in
interleaved rounds after a warm-up, one worker pinned to one core, wrk on the other."""

from __future__ import annotations

import statistics
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import data, dpop, wrk
from .plan import Plan
from .servers import Server


@dataclass(frozen=True)
class SideLoad:
    """Requests sent alongside a path's measurement (not part of its figures)."""

    label: str
    url: str
    script: str
    connections: int


@dataclass(frozen=True)
class Probe:
    key: str
    label: str
    url: str
    script: str
    side: SideLoad | None = None
    # Builds the script anew before each measurement (for the seconds it lasts): the DPoP
    # row's proofs must be fresh and used once.
    fresh: Callable[[float], str] | None = None


@dataclass
class Fixture:
    """What the paths need, made through the API before anything is measured."""

    reader: data.Account
    writer: data.Account
    note_id: str
    client_id: str
    client_secret: str
    holder: dpop.Holder
    dpop_token: str


def prepare(service: Server) -> Fixture:
    reader = data.register(service)
    writer = data.register(service)
    note_id = data.create_note(service, reader)
    client_id, client_secret = data.create_client(service)
    holder = dpop.Holder()
    dpop_token = dpop.login(service, holder, reader.username, data.PASSWORD)
    return Fixture(reader, writer, note_id, client_id, client_secret, holder, dpop_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form(fields: dict[str, str]) -> str:
    return urllib.parse.urlencode(fields)


def build(bare: Server, service: Server, fx: Fixture, plan: Plan) -> list[Probe]:
    me = wrk.request_script(path="/v1/users/me", headers=bearer(fx.reader.token))
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    logins = SideLoad(
        label=f"password grants, {plan.login_connections} connections, "
        f"{plan.login_pause_ms} ms pause each",
        url=service.base,
        script=wrk.request_script(
            method="POST",
            path="/v1/auth/token",
            headers=form_type,
            body=form(
                {
                    "grant_type": "password",
                    "username": fx.writer.username,
                    "password": data.PASSWORD,
                }
            ),
            delay_ms=plan.login_pause_ms,
        ),
        connections=plan.login_connections,
    )
    return [
        Probe("bare", "bare Quart GET /healthz", bare.base, wrk.request_script(path="/healthz")),
        Probe("healthz", "GET /healthz", service.base, wrk.request_script(path="/healthz")),
        Probe("me", "GET /v1/users/me", service.base, me),
        Probe(
            "me_dpop",
            "GET /v1/users/me (DPoP)",
            service.base,
            "",
            fresh=dpop.script_maker(service, fx.holder, fx.dpop_token),
        ),
        Probe(
            "note",
            "GET /v1/notes/{id}",
            service.base,
            wrk.request_script(path=f"/v1/notes/{fx.note_id}", headers=bearer(fx.reader.token)),
        ),
        Probe(
            "create",
            "POST /v1/notes",
            service.base,
            wrk.request_script(
                method="POST",
                path="/v1/notes",
                headers={**bearer(fx.writer.token), "Content-Type": "application/json"},
                body='{"title": "bench", "body": "' + "x" * 200 + '", "tags": ["bench"]}',
            ),
        ),
        Probe(
            "client_credentials",
            "POST /v1/auth/token client_credentials",
            service.base,
            wrk.request_script(
                method="POST",
                path="/v1/auth/token",
                headers=form_type,
                body=form(
                    {
                        "grant_type": "client_credentials",
                        "client_id": fx.client_id,
                        "client_secret": fx.client_secret,
                    }
                ),
            ),
        ),
        Probe("me_logins", "GET /v1/users/me + logins", service.base, me, side=logins),
    ]


def measure_once(path: Probe, seconds: int, connections: int) -> tuple[wrk.Result, Any]:
    """One measurement of `path` (its side load started first and stopped after)."""
    side = None
    if path.side is not None:
        side = wrk.start(
            path.side.url,
            path.side.script,
            seconds=seconds + 2,
            connections=path.side.connections,
        )
        time.sleep(1)  # logins in progress before the measurement starts
    script = path.fresh(seconds) if path.fresh is not None else path.script
    result = wrk.run(path.url, script, seconds=seconds, connections=connections)
    return result, (wrk.finish(side).as_dict() if side is not None else None)


def run_rounds(
    paths: list[Probe], plan: Plan, progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Warm-up (each path once), then `plan.rounds` interleaved rounds."""
    for path in paths:
        progress(f"warm-up {path.label}")
        measure_once(path, plan.warmup, plan.connections)
    rounds: dict[str, list[wrk.Result]] = {p.key: [] for p in paths}
    sides: dict[str, list[Any]] = {p.key: [] for p in paths}
    for number in range(plan.rounds):
        for path in paths:
            progress(f"round {number + 1}/{plan.rounds} {path.label}")
            result, side = measure_once(path, plan.seconds, plan.connections)
            rounds[path.key].append(result)
            if side is not None:
                sides[path.key].append(side)
    return {p.key: summarise(p, rounds[p.key], sides[p.key]) for p in paths}


def summarise(path: Probe, results: list[wrk.Result], sides: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": path.label,
        "rps": statistics.median(r.rps for r in results),
        "rps_min": min(r.rps for r in results),
        "rps_max": max(r.rps for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "max_ms": max(r.max_ms for r in results),
        "errors": sum(r.errors for r in results),
        "bad_status": sum(r.bad_status for r in results),
        "rounds": [r.as_dict() for r in results],
    }
    if path.side is not None:
        out["side_load"] = {
            "label": path.side.label,
            "rps": statistics.median(s["rps"] for s in sides) if sides else None,
            "p50_ms": statistics.median(s["p50_ms"] for s in sides) if sides else None,
            "bad_status": sum(s["bad_status"] for s in sides),
            "rounds": sides,
        }
    return out
