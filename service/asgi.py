"""Hypercorn's target: `portcullis serve --config hypercorn.toml` (or plain
`hypercorn --config hypercorn.toml service.asgi:app`, which does not exit non-zero when a
worker fails at start-up: see service/serve.py)."""

from __future__ import annotations

from .cli_support import load_settings_or_exit
from .metrics import prepare_multiprocess_dir  # before anything imports prometheus_client

settings = load_settings_or_exit(startup=True)
prepare_multiprocess_dir(settings.data_dir)

from .app import create_app  # noqa: E402

app = create_app(settings)
