"""`make bench` (`python -m bench [--quick]`): component costs, then bare Quart and the
service side by side (one Hypercorn worker pinned to core 0 with the project's
hypercorn.toml, wrk on core 1, interleaved rounds after a warm-up), the scaling checks,
each target's verdict, and everything in a JSON file. README, "Performance", explains it."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import components, paths, report, scaling, wrk
from .plan import FULL, QUICK
from .servers import ROOT, run_server

_started = time.monotonic()


def progress(text: str) -> None:
    print(f"  [{time.monotonic() - _started:5.0f} s] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter rounds, smaller sizes")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results.json", help="JSON results file"
    )
    parser.add_argument("--no-scaling", action="store_true", help="only the side-by-side paths")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    results: dict[str, Any] = {"plan": plan.__dict__, "machine": machine()}
    load = results["machine"]["load_average_at_start"][0]
    if load > 0.5:
        print(
            f"note: load average {load:.2f} at start: other work shares the cores, "
            "so figures are noisy (compare rounds, or run again)"
        )
    with tempfile.TemporaryDirectory(prefix="portcullis-bench-") as name:
        tmp = Path(name)
        progress("component costs")
        results["components"] = components.measure(tmp, quick=plan.quick)
        print("\n".join(components.report(results["components"])))
        reason = wrk.ensure_installed()
        if reason:
            print(f"end-to-end part skipped: {reason}")
            args.out.write_text(json.dumps(results, indent=2))
            return 1
        scale: dict[str, Any] = {}
        with (
            run_server("bare", tmp / "bare", "bench.bare:app", migrate=False) as bare,
            run_server("service", tmp / "service", "service.asgi:app") as service,
        ):
            progress("preparing data through the API")
            fixture = paths.prepare(service)
            probes = paths.build(bare, service, fixture, plan)
            results["paths"] = paths.run_rounds(probes, plan, progress)
            print()
            print("\n".join(report.paths_table(results["paths"])))
            if not args.no_scaling:
                token = fixture.reader.token
                scale["connections"] = scaling.connections(service, token, plan, progress)
                scale["burst"] = scaling.burst(service, token, plan, progress)
                scale["notes"] = scaling.notes_per_user(service, plan, progress)
        if not args.no_scaling:
            scale["limiter"] = scaling.limiter_memory(tmp, plan, progress)
            scale["postgres_redis"] = scaling.postgres_redis(tmp, plan, progress)
            print()
            print("\n".join(report.scaling_tables(scale)))
        results["scaling"] = scale
    results["machine"]["load_average_at_end"] = os.getloadavg()
    found = report.targets(results["paths"], scale)
    results["targets"] = [t.as_dict() for t in found]
    print()
    print("\n".join(report.targets_table(found)))
    if plan.quick:
        print("quick run: short steps and smaller sizes; its scaling verdicts are indicative")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {args.out} ({time.monotonic() - _started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
