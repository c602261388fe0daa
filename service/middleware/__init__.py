"""The ASGI layer in front of Quart: one `Gate` (gate.py) running one section per
concern, each concern's rules in its own module.

Order (see `service.app.create_app`): proxy → request_context → target → inflight →
body → Quart; WebSocket handshakes are served as GET requests (websocket.py). Nothing
here imports `service.api`: problem bodies come from `service.problem`.
"""

from __future__ import annotations

from .gate import Gate
from .target import plain_request_target

__all__ = ["Gate", "plain_request_target"]
