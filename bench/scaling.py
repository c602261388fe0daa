"""The scaling checks of `make bench`: notes per user, distinct clients in the limiter,
connections, simultaneous keep-alive requests, and PostgreSQL + Redis with 2 workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import data, wrk
from .paths import bearer
from .plan import Plan
from .servers import CLIENT_CPUS, ROOT, Server, pinned, run_server

Progress = Callable[[str], None]
# Notes per page in the notes-per-user check: small enough that the user with 10 notes
# fills every page too (first, tag, and the page after the middle cursor), so each size
# serves the same number of rows and only the depth differs.
NOTES_PAGE = 4


def notes_per_user(service: Server, plan: Plan, progress: Progress) -> dict[str, Any]:
    """First page, a page deep in the middle (keyset cursor) and a tag page, for users
    holding each of `plan.note_counts` notes."""
    users: dict[int, tuple[data.Account, str | None]] = {}
    for count in plan.note_counts:
        progress(f"notes: a user with {count:,} notes")
        account = data.register(service, "notes")
        template = data.create_note(service, account)
        positions = data.copy_notes(service, template_id=template, count=count - 1)
        middle = positions[len(positions) // 2] if positions else None
        users[count] = (account, data.deep_cursor(service, account, middle) if middle else None)
    queries = {
        "first page": f"/v1/notes?limit={NOTES_PAGE}",
        "tag page": f"/v1/notes?limit={NOTES_PAGE}&tag=bench",
    }
    out: dict[str, Any] = {}
    for name, path in [*queries.items(), ("middle page", "")]:
        rows: dict[str, Any] = {}
        for count, (account, cursor) in users.items():
            target = path or (f"/v1/notes?limit={NOTES_PAGE}&cursor={cursor}" if cursor else "")
            if not target:
                rows[str(count)] = None  # too few notes for a middle page, or no cursor
                continue
            progress(f"notes: {name}, {count:,} notes")
            script = wrk.request_script(path=target, headers=bearer(account.token))
            result = wrk.run(
                service.base, script, seconds=plan.scale_seconds, connections=plan.connections
            )
            rows[str(count)] = result.as_dict()
        out[name] = rows
    return out


def limiter_memory(tmp: Path, plan: Plan, progress: Progress) -> dict[str, Any]:
    """Worker RSS after requests from 1, 1,000, ... distinct client addresses, each an
    anonymous `GET /v1/users/me` (limit evaluated per address, then 401 and a failure
    counted per address), on its own server that trusts 127.0.0.1 as a proxy."""
    env = {"PORTCULLIS_TRUSTED_PROXIES": "127.0.0.1/32"}
    steps: list[dict[str, Any]] = []
    with run_server("limiter", tmp / "limiter", "service.asgi:app", env=env) as server:
        seen = 0
        baseline = server.rss_kib()
        for target in plan.client_counts:
            new = target - seen
            if new <= 0:
                continue
            progress(f"limiter: {target:,} distinct clients")
            started = time.monotonic()
            found = wrk.clients(
                server.base, path="/v1/users/me", first=seen, count=new, connections=64
            )
            elapsed = time.monotonic() - started
            seen += new
            time.sleep(0.5)
            steps.append(
                {
                    "clients": seen,
                    "rss_kib": server.rss_kib(),
                    "statuses": found["statuses"],
                    "rps": found["answered"] / elapsed if elapsed else None,
                }
            )
    return {"baseline_rss_kib": baseline, "steps": steps}


def connections(service: Server, token: str, plan: Plan, progress: Progress) -> dict[str, Any]:
    out = {}
    script = wrk.request_script(path="/v1/users/me", headers=bearer(token))
    for level in plan.connection_levels:
        progress(f"connections: {level}")
        threads = 1 if level <= 256 else 2
        result = wrk.run(
            service.base, script, seconds=plan.scale_seconds, connections=level, threads=threads
        )
        out[str(level)] = result.as_dict()
    return out


def burst(service: Server, token: str, plan: Plan, progress: Progress) -> dict[str, Any]:
    progress(f"burst: {plan.burst_connections} connections x {plan.burst_rounds} rounds")
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            *pinned(CLIENT_CPUS),
            sys.executable,
            "-m",
            "bench.burst",
            "--port",
            str(service.port),
            "--ca",
            str(service.ca),
            "--path",
            "/v1/users/me",
            "--connections",
            str(plan.burst_connections),
            "--rounds",
            str(plan.burst_rounds),
        ],
        env={**os.environ, "BENCH_TOKEN": token},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr[-2000:]}
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def postgres_redis(tmp: Path, plan: Plan, progress: Progress) -> dict[str, Any]:
    """1 and 2 workers on PostgreSQL + Redis (nothing pinned: the workers, wrk, PostgreSQL
    and Redis share both cores), when PORTCULLIS_BENCH_DATABASE_URL and
    PORTCULLIS_BENCH_REDIS_URL are set."""
    database = os.environ.get("PORTCULLIS_BENCH_DATABASE_URL")
    redis = os.environ.get("PORTCULLIS_BENCH_REDIS_URL")
    if not (database and redis):
        return {"skipped": "PORTCULLIS_BENCH_DATABASE_URL and PORTCULLIS_BENCH_REDIS_URL not set"}
    env = {"PORTCULLIS_DATABASE_URL": database, "PORTCULLIS_REDIS_URL": redis}
    out: dict[str, Any] = {}
    for workers in (1, 2):
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        with run_server(
            f"pg-{workers}",
            tmp / f"pg{workers}",
            "service.asgi:app",
            workers=workers,
            cpus=None,
            env=env,
        ) as server:
            account = data.register(server, "pg")
            note = data.create_note(server, account)
            rows = {}
            for key, path in (("me", "/v1/users/me"), ("note", f"/v1/notes/{note}")):
                script = wrk.request_script(path=path, headers=bearer(account.token))
                progress(f"PostgreSQL + Redis, {label}: {path}")
                wrk.run(server.base, script, seconds=plan.warmup, connections=64, cpus=None)
                result = wrk.run(
                    server.base,
                    script,
                    seconds=plan.seconds,
                    connections=64,
                    threads=2,
                    cpus=None,
                )
                rows[key] = result.as_dict()
            out[str(workers)] = rows
    return out
