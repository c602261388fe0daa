"""The parts of the service the domain functions use, as a protocol (no upward import).

`service.services.Services` provides them all; the domain layer names only these
protocols, so it depends on the parts below it and never on the wiring above it. A
function that needs less asks for less (`Storage`, `Accounts`), so the command line can
call it with just a database and a password hasher.
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


class Storage(Protocol):
    db: Database


class Accounts(Storage, Protocol):
    passwords: PasswordService


class Parts(Accounts, Protocol):
    settings: Settings
    metrics: Metrics
    tokens: TokenService
    denylist: Denylist
    limiter: Limiter
    bus: SignalBus
    abuse: AbusePolicy
