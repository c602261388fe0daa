"""The bench's verdicts and tables: each target checked against the medians of the rounds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .scaling import NOTES_PAGE

# Service paths measured at 64 connections, for the "no request over 1 s" target.
_AT_64 = ("healthz", "me", "note", "create", "client_credentials", "me_logins")
LIMITER_BOUND_MIB = 128  # what the bench holds the per-client state of 100,000 clients to
FLAT = 0.8  # "cost stays flat": the largest size keeps this share of the smallest's req/s


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: could not be measured in this run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(paths: dict[str, Any], key: str) -> float:
    return float(paths[key]["rps"] / paths["bare"]["rps"])


def targets(paths: dict[str, Any], scaling: dict[str, Any]) -> list[Target]:
    bare = paths["bare"]
    found = [
        Target(
            "auth path GET /v1/users/me req/s",
            ">= 0.75x bare",
            f"{_ratio(paths, 'me'):.2f}x",
            _ratio(paths, "me") >= 0.75,
        ),
        Target(
            "data path GET /v1/notes/{id} req/s",
            ">= 0.5x bare",
            f"{_ratio(paths, 'note'):.2f}x",
            _ratio(paths, "note") >= 0.5,
        ),
    ]
    if "me_dpop" in paths:
        found.append(
            Target(
                "DPoP GET /v1/users/me req/s",
                ">= 0.6x bare",
                f"{_ratio(paths, 'me_dpop'):.2f}x",
                _ratio(paths, "me_dpop") >= 0.6,
            )
        )
    for key in ("me", "note"):
        p99, limit = paths[key]["p99_ms"], 1.5 * bare["p99_ms"]
        found.append(
            Target(
                f"{paths[key]['label']} p99",
                f"<= 1.5x bare p99 ({limit:.0f} ms)",
                f"{p99:.0f} ms",
                p99 <= limit,
            )
        )
    slowest = max((paths[k]["max_ms"], paths[k]["label"]) for k in _AT_64 if k in paths)
    found.append(
        Target(
            "slowest request at 64 connections",
            "<= 1000 ms",
            f"{slowest[0]:.0f} ms ({slowest[1]})",
            slowest[0] <= 1000,
        )
    )
    grants = paths["client_credentials"]["rps"]
    found.append(Target("client_credentials tokens/s", ">= 1000", f"{grants:.0f}", grants >= 1000))
    alone, loaded = paths["me"]["p99_ms"], paths["me_logins"]["p99_ms"]
    found.append(
        Target(
            "auth path p99 with logins alongside",
            f"<= 2x p99 without ({2 * alone:.0f} ms)",
            f"{loaded:.0f} ms",
            loaded <= 2 * alone,
        )
    )
    found += _scaling_targets(scaling)
    errors = sum(paths[k]["errors"] + paths[k]["bad_status"] for k in paths)
    found.append(Target("errors on the side-by-side paths", "0", str(errors), errors == 0))
    return found


def _scaling_targets(scaling: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    notes = scaling.get("notes")
    if notes:
        for query, rows in notes.items():
            sized = [(int(n), r) for n, r in rows.items() if r]
            if len(sized) < 2:
                continue
            (small, first), (large, last) = sized[0], sized[-1]
            share = last["rps"] / first["rps"]
            found.append(
                Target(
                    f"notes {query}: {large:,} vs {small:,} notes per user",
                    f">= {FLAT}x req/s (flat)",
                    f"{share:.2f}x",
                    share >= FLAT,
                )
            )
    limiter = scaling.get("limiter")
    if limiter and limiter.get("steps"):
        last = limiter["steps"][-1]
        growth = (last["rss_kib"] - limiter["baseline_rss_kib"]) / 1024
        found.append(
            Target(
                f"worker memory growth, 1 to {last['clients']:,} clients",
                f"<= {LIMITER_BOUND_MIB} MiB",
                f"{growth:.1f} MiB",
                growth <= LIMITER_BOUND_MIB,
            )
        )
    levels = scaling.get("connections")
    if levels:
        bad = {n: r["errors"] + r["bad_status"] for n, r in levels.items()}
        found.append(
            Target(
                f"{', '.join(levels)} connections: errors",
                "0 at every level",
                ", ".join(f"{n}: {e}" for n, e in bad.items()),
                not any(bad.values()),
            )
        )
    burst = scaling.get("burst")
    if burst:
        if "error" in burst:
            found.append(Target("simultaneous keep-alive requests", "all 200", "failed", None))
        else:
            ok = burst["statuses"].get("200", 0)
            found.append(
                Target(
                    f"{burst['connections']} keep-alive connections sending at once",
                    "all answered 200",
                    f"{ok}/{burst['requests']} "
                    + ", ".join(f"{s}: {n}" for s, n in burst["statuses"].items() if s != "200"),
                    ok == burst["requests"] and burst["connect_failures"] == 0,
                )
            )
    return found


def _n(value: float) -> str:
    return f"{value:,.0f}"


def paths_table(paths: dict[str, Any]) -> list[str]:
    bare = paths["bare"]["rps"]
    lines = [
        f"{'path (medians of the rounds)':40} {'req/s':>7} {'(min-max)':>15} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'x bare':>6} {'errors':>6}"
    ]
    for row in paths.values():
        spread = f"({_n(row['rps_min'])}-{_n(row['rps_max'])})"
        lines.append(
            f"{row['label']:40} {_n(row['rps']):>7} {spread:>15} {row['p50_ms']:7.1f} "
            f"{row['p99_ms']:7.1f} {row['max_ms']:7.0f} {row['rps'] / bare:6.2f} "
            f"{row['errors'] + row['bad_status']:>6}"
        )
        side = row.get("side_load")
        if side and side.get("rps") is not None:
            lines.append(
                f"  alongside: {side['label']}: {side['rps']:.1f} logins/s, "
                f"p50 {side['p50_ms']:.0f} ms, failed {side['bad_status']}"
            )
    return lines


def scaling_tables(scaling: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    notes = scaling.get("notes")
    if notes:
        lines.append(f"notes per user (GET /v1/notes, limit {NOTES_PAGE}): req/s / p99 ms")
        for query, rows in notes.items():
            cells = [
                f"{int(n):,}: {r['rps']:,.0f} / {r['p99_ms']:.0f}" if r else f"{int(n):,}: -"
                for n, r in rows.items()
            ]
            lines.append(f"  {query:12} " + "   ".join(cells))
    limiter = scaling.get("limiter")
    if limiter:
        lines.append(
            f"limiter: worker RSS {limiter['baseline_rss_kib'] / 1024:.1f} MiB before; after"
        )
        for step in limiter["steps"]:
            grown = (step["rss_kib"] - limiter["baseline_rss_kib"]) / 1024
            lines.append(
                f"  {step['clients']:>8,} distinct clients: {step['rss_kib'] / 1024:6.1f} MiB "
                f"(+{grown:.1f}), {step['rps']:,.0f} req/s, statuses {step['statuses']}"
            )
    levels = scaling.get("connections")
    if levels:
        lines.append("connections (GET /v1/users/me): req/s, p50 / p99 / max ms, errors")
        for n, r in levels.items():
            lines.append(
                f"  {int(n):>5}: {r['rps']:7,.0f}  {r['p50_ms']:.0f} / {r['p99_ms']:.0f} / "
                f"{r['max_ms']:.0f}  errors {r['errors']}, status>=400 {r['bad_status']}"
            )
    burst = scaling.get("burst")
    if burst and "error" not in burst:
        lines.append(
            f"burst: {burst['connections']} keep-alive connections x "
            f"{burst['requests'] // max(1, burst['connections'])} rounds at once: statuses "
            f"{burst['statuses']}, p50 {burst['p50_ms']:.0f} ms, p99 {burst['p99_ms']:.0f} ms, "
            f"max {burst['max_ms']:.0f} ms (connecting took {burst['connect_seconds']} s)"
        )
    elif burst:
        lines.append(f"burst: failed: {burst['error'][-500:]}")
    pg = scaling.get("postgres_redis")
    if pg:
        if "skipped" in pg:
            lines.append(f"PostgreSQL + Redis: skipped ({pg['skipped']})")
        else:
            lines.append("PostgreSQL + Redis, nothing pinned: req/s, p50 / p99 ms")
            for workers, rows in pg.items():
                cells = [
                    f"{k}: {r['rps']:,.0f}, {r['p50_ms']:.0f} / {r['p99_ms']:.0f}"
                    for k, r in rows.items()
                ]
                lines.append(f"  {workers} worker(s)  " + "   ".join(cells))
    return lines


def targets_table(found: list[Target]) -> list[str]:
    lines = [f"{'target':52} {'wanted':32} {'measured':26} verdict"]
    for t in found:
        verdict = "met" if t.met else ("not measured" if t.met is None else "NOT MET")
        lines.append(f"{t.name:52} {t.wanted:32} {t.measured:26} {verdict}")
    return lines
