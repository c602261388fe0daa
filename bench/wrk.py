"""Run wrk (HTTP/1.1 keep-alive over TLS) pinned to the load generator's core, with a Lua
script per scenario, and read its figures from one JSON line the script prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .servers import CLIENT_CPUS, pinned

# Appended to every scenario: wrk's own summary as one machine-readable line. Latencies
# are microseconds; `status` counts responses >= 400; `timeout` requests not answered
# within wrk's --timeout (30 s here, so slow answers are measured rather than dropped).
_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p90_us":%.0f,' ..
    '"p99_us":%.0f,"max_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors (connect/read/write) and timeouts
    bad_status: int  # responses with status >= 400

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def request_script(
    *,
    method: str = "GET",
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    delay_ms: int | None = None,
) -> str:
    """A fixed request: every connection sends it again and again."""
    lines = [f"wrk.method = {lua_string(method)}", f"wrk.path = {lua_string(path)}"]
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    if delay_ms is not None:
        lines.append(f"function delay() return {delay_ms} end")
    return "\n".join(lines) + "\n"


def distinct_clients_script(*, path: str, first: int, count: int) -> str:
    """Each request from a new client address (X-Forwarded-For, believed because the server
    trusts 127.0.0.1 as a proxy): the `first`-th address of 10.0.0.0/8 onwards. After
    `count` answers it prints one `CLIENTS {...}` line and ends wrk at once (requests
    still in flight then reuse the last address, so exactly `count` addresses are new)."""
    return f"""
wrk.path = {lua_string(path)}
local first, count, sent, got = {first}, {count}, 0, 0
local statuses = {{}}
function request()
  local i = first + math.min(sent, count - 1)  -- past `count`: the last address again
  sent = sent + 1
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256,
                           math.floor(i / 256) % 256, i % 256)
  return wrk.format(nil, nil, {{["X-Forwarded-For"] = ip}})
end
function response(status, headers, body)
  got = got + 1
  statuses[status] = (statuses[status] or 0) + 1
  if got >= count then
    local parts = {{}}
    for k, v in pairs(statuses) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
    io.write(string.format('CLIENTS {{"sent":%d,"answered":%d,"statuses":{{%s}}}}\\n',
                           sent, got, table.concat(parts, ",")))
    io.flush()
    os.exit(0)
  end
end
"""


def clients(url: str, *, path: str, first: int, count: int, connections: int) -> dict[str, Any]:
    """Send requests from `count` new client addresses (see distinct_clients_script)."""
    script = distinct_clients_script(path=path, first=first, count=count)
    seconds = max(30, count // 100)  # an upper bound: wrk exits once `count` answered
    process, script_path = start(url, script, seconds=seconds, connections=min(connections, count))
    try:
        out, err = process.communicate(timeout=seconds + 60)
    finally:
        script_path.unlink(missing_ok=True)
    for line in out.splitlines():
        if line.startswith("CLIENTS "):
            found: dict[str, Any] = json.loads(line[8:])
            return found
    raise RuntimeError(f"wrk did not reach {count} clients: {out[-1500:]} {err[-1500:]}")


def available() -> bool:
    return shutil.which("wrk") is not None


def ensure_installed() -> str | None:
    """wrk on PATH, installing Debian's package when missing; the reason when impossible."""
    if available():
        return None
    if shutil.which("apt-get") is None:
        return "wrk is not installed and there is no apt-get (install wrk)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            return f"wrk is not installed and `{' '.join(command)}` failed (install wrk)"
    return None if available() else "wrk could not be installed"


def start(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    cpus: str | None = CLIENT_CPUS,
) -> tuple[subprocess.Popen[str], Path]:
    """Start wrk in the background; `finish()` collects its result."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False)
    with handle:
        handle.write(script + _DONE)
    pin = pinned(cpus)
    command = [
        *pin,
        "wrk",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        handle.name,
        url,
    ]
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, Path(handle.name)


def finish(started: tuple[subprocess.Popen[str], Path]) -> Result:
    process, script = started
    try:
        out, err = process.communicate(timeout=600)
    finally:
        script.unlink(missing_ok=True)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            raw = json.loads(line[6:])
            seconds = raw["duration_us"] / 1e6
            return Result(
                requests=int(raw["requests"]),
                seconds=seconds,
                rps=raw["requests"] / seconds if seconds else 0.0,
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
                errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
                bad_status=int(raw["status"]),
            )
    raise RuntimeError(f"wrk gave no result: {out[-1500:]} {err[-1500:]}")


def run(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    cpus: str | None = CLIENT_CPUS,
) -> Result:
    return finish(
        start(url, script, seconds=seconds, connections=connections, threads=threads, cpus=cpus)
    )
