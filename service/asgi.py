"""Hypercorn's target: `portcullis serve` (or plain `hypercorn --config hypercorn.toml
service.asgi:app`, which neither exits non-zero when a worker fails at start-up nor sets the
TLS groups: see service/server/)."""

from __future__ import annotations

import gc

from .cli_support import load_settings_or_exit
from .metrics import prepare_multiprocess_dir  # before anything imports prometheus_client
from .server.patches import install as install_server_patches

install_server_patches()  # before Hypercorn serves

settings = load_settings_or_exit(startup=True)
prepare_multiprocess_dir(settings.data_dir)

from .app import create_app  # noqa: E402
from .logging import batch_lines  # noqa: E402
from .server.patches.lifecycle import drain_with  # noqa: E402
from .services import EXTENSION  # noqa: E402
from .tracing_setup import install as install_tracing  # noqa: E402

app = create_app(settings)
batch_lines()  # one write per event-loop iteration (service/logging.py)
drain_with(app.extensions[EXTENSION].health.begin_drain, settings.drain_seconds)
install_tracing(app, app.extensions[EXTENSION], settings.drain_seconds)  # OTEL_* settings


@app.before_serving
async def freeze_startup_heap() -> None:
    """Once the worker has started (after `Services.start`), move everything alive to
    the collector's permanent generation: the libraries' hundreds of thousands of
    long-lived objects are then no longer traversed by every full collection that the
    request path's allocations trigger (`gc.freeze`, as the gc docs advise for
    long-running servers). Only the cyclic collector skips them: reference counting
    still frees what becomes unused."""
    gc.collect()
    gc.freeze()
