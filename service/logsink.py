"""Where every log line goes: one sink on stdout, batched per event-loop iteration in a
serving worker."""

from __future__ import annotations

import asyncio
import atexit
import sys
from typing import Any


class Sink:
    """Where every line goes: the stream `configure_logging` was given, else whatever
    `sys.stdout` is now (tests swap it).

    In a serving worker (`batch_lines`), the lines of one event-loop iteration are written
    and flushed together by a callback the loop runs next: one system call per iteration
    instead of one per request, each line out within an iteration of its request's end.
    Elsewhere (the CLI, tests, embedding) a line is written at once."""

    __slots__ = ("batch", "pending", "stream")

    def __init__(self) -> None:
        self.stream: Any = None
        self.batch = False
        self.pending: list[str] = []

    def write(self, line: str) -> None:
        self.pending.append(line)
        if self.batch:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                if len(self.pending) == 1:
                    loop.call_soon(self.flush)
                return
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        text = self.pending[0] if len(self.pending) == 1 else "".join(self.pending)
        self.pending = []
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()


sink = Sink()
atexit.register(sink.flush)  # lines of a last iteration the loop did not run


def batch_lines() -> None:
    """Write lines once per event-loop iteration (a serving worker's setting)."""
    sink.batch = True
