"""The parts of the service the domain functions use, as a protocol (no upward import).

`service.services.Services` provides them; the domain layer names only this protocol,
so it depends on the parts below it and never on the wiring above it.
"""

from __future__ import annotations

from typing import Protocol

from ..config import Settings
from ..metrics import Metrics
from ..security.denylist import Denylist
from ..security.passwords import PasswordService
from ..security.ratelimit import Limiter
from ..security.tokens import TokenService
from ..signalbus import SignalBus
from ..store.db import Database
from .abuse import AbusePolicy


class Parts(Protocol):
    settings: Settings
    metrics: Metrics
    db: Database
    tokens: TokenService
    passwords: PasswordService
    denylist: Denylist
    limiter: Limiter
    bus: SignalBus
    abuse: AbusePolicy
