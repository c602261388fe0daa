"""`python -m bench.profile`: where the worker's time goes under load, per component.

One worker pinned to core 0 serves `GET /v1/users/me` and `GET /v1/notes/{id}` to wrk (64
connections, core 1) while py-spy samples it (non-blocking, so the load is not slowed by
the sampler). The event-loop thread's busy share comes from the kernel's CPU accounting
(/proc), the split by component from the samples. Raw samples go to bench/profile-*.txt
(flamegraph.pl or speedscope read them); the summary is printed as markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, wrk
from .plan import QUICK
from .servers import ROOT, run_server

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Modules that only carry a call (the frame above them says whose work it is).
_GENERIC = (
    "asyncio/",
    "json/",
    "contextlib.py",
    "functools.py",
    "contextvars",
    "typing.py",
    "enum.py",
    "abc.py",
    "threading.py",
    "queue.py",
    "concurrent/",
    "copy.py",
    "inspect.py",
    "<string>",
    "re/",
    "dataclasses.py",
    "collections/",
    "base64.py",
    "uuid.py",
    "ipaddress.py",
    "datetime.py",
    "weakref.py",
    "urllib/",
    "email/",
    "hashlib.py",
    "hmac.py",
    "secrets.py",
    "string.py",
    "traceback.py",
    "linecache.py",
)
# First match from the leaf upwards (generic frames skipped) names the component.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "bearer validation (joserfc, Authlib, cryptography)",
        (
            "joserfc/",
            "authlib/",
            "cryptography/",
            "service/security/tokens.py",
            "service/security/authn.py",
            "service/security/keys.py",
            "service/security/issuers.py",
        ),
    ),
    ("SQLAlchemy (statement build, compile, result)", ("sqlalchemy/",)),
    ("aiosqlite / asyncpg hand-off", ("aiosqlite/", "asyncpg/", "sqlite3/")),
    ("structlog + log line JSON", ("structlog/", "logging/", "service/logging.py")),
    ("metrics (prometheus_client multiprocess)", ("prometheus_client/", "service/metrics.py")),
    ("pydantic models", ("pydantic/", "pydantic_core/", "service/models/")),
    (
        "rate limit + blocks + denylist",
        (
            "service/security/ratelimit.py",
            "service/security/blocking.py",
            "service/security/denylist.py",
            "service/security/proxies.py",
        ),
    ),
    (
        "service hooks, routes, store (own code)",
        (
            "service/guard.py",
            "service/api/",
            "service/domain/",
            "service/store/",
            "service/services.py",
            "service/context.py",
            "service/errors.py",
            "service/security/",
        ),
    ),
    ("the ASGI layer (service/middleware/)", ("service/middleware/",)),
    (
        "Quart, Werkzeug, quart-schema, quart-cors",
        (
            "quart/",
            "werkzeug/",
            "quart_schema/",
            "quart_cors",
            "quart_rate_limiter/",
            "markupsafe/",
            "blinker/",
        ),
    ),
    (
        "Hypercorn + h11 (HTTP/1.1 protocol)",
        ("hypercorn/", "h11/", "h2/", "hpack/", "service/server/", "wsproto/", "priority/"),
    ),
    ("asyncio scheduling (tasks, futures, locks)", ("asyncio/",)),
)
LOOP = "uvloop internals: TLS, socket I/O, callback dispatch (C, no Python frame)"


@dataclass
class Sample:
    thread: str
    frames: list[tuple[str, str]]  # (function, file), root first
    count: int


def parse(raw: str) -> list[Sample]:
    samples = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        parts = stack.split(";")
        thread = parts[0].split(": ", 1)[-1]
        frames = []
        for part in parts[1:]:
            match = _FRAME.match(part)
            frames.append((match["func"], match["file"]) if match else (part, ""))
        samples.append(Sample(thread, frames, int(count)))
    return samples


def component(frames: list[tuple[str, str]]) -> str:
    for func, file in reversed(frames):
        for name, prefixes in COMPONENTS[:-1]:
            if file.startswith(prefixes) and not file.startswith(_GENERIC):
                return name
        if func == "Runner.run" and file.startswith("asyncio/runners.py"):
            return LOOP  # the loop itself is the leaf-most Python frame
    for func, file in reversed(frames):
        if file.startswith("asyncio/"):
            return COMPONENTS[-1][0]
        if func == "Runner.run":
            return LOOP
    return "other"


def cpu_ticks(pid: int) -> dict[int, int]:
    """utime + stime (clock ticks) of each thread of `pid`."""
    ticks = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def summarise(samples: list[Sample], pid: int, busy: dict[str, float]) -> dict[str, Any]:
    main = [s for s in samples if s.thread == "MainThread"]
    total = sum(s.count for s in main) or 1
    by_component: Counter[str] = Counter()
    for s in main:
        by_component[component(s.frames)] += s.count
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for s in main:
        seen = set()
        for func, file in s.frames:
            if file.startswith("service/") and (func, file) not in seen:
                seen.add((func, file))
                inclusive[f"{func} ({file})"] += s.count
        func, file = s.frames[-1] if s.frames else ("?", "")
        leaf[f"{func} ({file})"] += s.count
    others = Counter[str]()
    for s in samples:
        if s.thread != "MainThread":
            others[re.sub(r"[-_]\d+", "", s.thread)] += s.count
    return {
        "worker_pid": pid,
        "main_thread_busy": busy["main"],
        "other_threads_cpu": busy["others"],
        "main_samples": total,
        "components": {k: v / total for k, v in by_component.most_common()},
        "service_inclusive": {k: v / total for k, v in inclusive.most_common(25)},
        "leaf": {k: v / total for k, v in leaf.most_common(25)},
        "other_threads_samples": dict(others.most_common(8)),
    }


def markdown(title: str, summary: dict[str, Any], result: wrk.Result) -> str:
    lines = [
        f"### {title}",
        "",
        f"Under the profiler: {result.rps:,.0f} req/s, p50 {result.p50_ms:.0f} ms, "
        f"p99 {result.p99_ms:.0f} ms. Event-loop thread busy "
        f"{summary['main_thread_busy']:.0%} of the wall time; other threads (aiosqlite, "
        f"Argon2) {summary['other_threads_cpu']:.0%} of a core. "
        f"{summary['main_samples']:,} event-loop samples.",
        "",
        "| component (event-loop thread) | share of its samples |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.1%} |" for k, v in summary["components"].items()]
    lines += ["", "| service function (inclusive) | share |", "|---|---:|"]
    lines += [f"| `{k}` | {v:.1%} |" for k, v in list(summary["service_inclusive"].items())[:15]]
    lines += ["", "| leaf function (self) | share |", "|---|---:|"]
    lines += [f"| `{k}` | {v:.1%} |" for k, v in list(summary["leaf"].items())[:15]]
    return "\n".join(lines) + "\n"


def profile_one(
    probe: paths.Probe, pid: int, seconds: int, rate: int, out: Path, *, blocking: bool
) -> tuple[dict[str, Any], wrk.Result]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    script = probe.fresh(seconds + 4) if probe.fresh is not None else probe.script
    started = wrk.start(probe.url, script, seconds=seconds + 4, connections=64)
    time.sleep(2)
    before, wall = cpu_ticks(pid), time.monotonic()
    subprocess.run(  # noqa: S603 - fixed argv
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
            "--threads",
            "--function",
            *([] if blocking else ["--nonblocking"]),
            "--format",
            "raw",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )
    after, wall = cpu_ticks(pid), time.monotonic() - wall
    result = wrk.finish(started)
    hz = os.sysconf("SC_CLK_TCK")
    main = (after.get(pid, 0) - before.get(pid, 0)) / hz / wall
    others = sum(after[t] - before.get(t, 0) for t in after if t != pid) / hz / wall
    summary = summarise(parse(out.read_text()), pid, {"main": main, "others": others})
    return summary, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument(
        "--paths",
        default="me,note",
        help="comma-separated: bare, healthz, me, me_dpop, note, create, client_credentials",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the service (PORTCULLIS_REDIS_URL=..., PORTCULLIS_DATABASE_URL=...)",
    )
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the worker for each sample (exact stacks; slows it down)",
    )
    args = parser.parse_args(argv)
    if reason := wrk.ensure_installed():
        print(reason)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)  # py-spy does not create it
    summaries = {}
    with tempfile.TemporaryDirectory(prefix="portcullis-profile-") as name:
        tmp = Path(name)
        with (
            run_server("bare", tmp / "bare", "bench.bare:app", migrate=False) as bare,
            run_server(
                "service",
                tmp / "service",
                "service.asgi:app",
                env=dict(item.split("=", 1) for item in args.set),
            ) as service,
        ):
            fixture = paths.prepare(service)
            probes = {p.key: p for p in paths.build(bare, service, fixture, QUICK)}
            for key in args.paths.split(","):
                probe = probes[key]
                pid = (bare if key == "bare" else service).workers[0]
                warm = probe.fresh(3) if probe.fresh is not None else probe.script
                wrk.run(probe.url, warm, seconds=3, connections=64)  # warm-up
                out = args.out_dir / f"profile-{key}.txt"
                summary, result = profile_one(
                    probe, pid, args.seconds, args.rate, out, blocking=args.blocking
                )
                summaries[key] = {"summary": summary, "wrk": result.as_dict()}
                print(markdown(probe.label, summary, result))
    (args.out_dir / "profile-summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
