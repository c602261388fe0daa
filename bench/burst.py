"""Many keep-alive connections that send one request each at the same instant, several
times over: does the in-flight cap shed any of them? (wrk cannot send in step.)

Runs in its own process, pinned to the load generator's core, with a minimal HTTP/1.1
client over asyncio TLS streams so that a thousand requests leave within milliseconds.
The token comes in BENCH_TOKEN. Prints one JSON line: statuses, connection errors and latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import time
from collections import Counter


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _connect(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    request: bytes,
    gate: asyncio.Semaphore,
    everyone: asyncio.Event,
    up: list[int],
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A proven keep-alive connection: one request answered. Until every connection is
    up it sends another after 4 s idle, so the server's 5 s idle timeout closes none of them
    while the others are still shaking hands."""
    async with gate:  # bounded handshakes: the server is not flooded before the test
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname="localhost"
        )
        writer.write(request)
        await _read_response(reader)
    up[0] += 1
    while not everyone.is_set():
        try:
            await asyncio.wait_for(everyone.wait(), timeout=4)
        except TimeoutError:
            writer.write(request)
            await _read_response(reader)
    return reader, writer


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, float]:
    started = time.perf_counter()
    writer.write(request)
    try:
        status = await _read_response(reader)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        status = 0
    return status, time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols(["http/1.1"])
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: localhost:{args.port}\r\n"
        f"Authorization: Bearer {os.environ['BENCH_TOKEN']}\r\n\r\n"
    ).encode()
    gate, everyone, up = asyncio.Semaphore(32), asyncio.Event(), [0]
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_connect("127.0.0.1", args.port, ctx, request, gate, everyone, up))
        for _ in range(args.connections)
    ]
    # Up, or failed while connecting (a task done before `everyone` is set).
    while up[0] + sum(t.done() for t in tasks) < len(tasks):
        await asyncio.sleep(0.05)
    connect_seconds = time.perf_counter() - started
    everyone.set()
    connected = await asyncio.gather(*tasks, return_exceptions=True)
    streams = [c for c in connected if not isinstance(c, BaseException)]
    await asyncio.sleep(args.pause)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for number in range(args.rounds):
        if number:
            await asyncio.sleep(args.pause)  # every connection idle, then all send at once
        results = await asyncio.gather(*(_one(r, w, request) for r, w in streams))
        for status, latency in results:
            statuses[status] += 1
            latencies.append(latency)
    for _, writer in streams:
        writer.close()
    latencies.sort()
    return {
        "connections": len(streams),
        "connect_failures": len(connected) - len(streams),
        "connect_seconds": round(connect_seconds, 2),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "max_ms": latencies[-1] * 1000 if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
