"""The parts of the service the domain functions use, as a protocol (no upward import).

`service.services.Services` provides them all; the domain layer names only these
protocols, so it depends on the parts below it and never on the wiring above it. A
function that needs less asks for less (`Storage`, `Accounts`, `Signalling`,
`Revoking`), so the command line can call it with just a database and a password hasher.
"""

from __future__ import annotations

from typing import Protocol

from ..config import Settings
from ..metrics import Metrics
from ..security.denylist import Denylist
from ..security.dpop_gate import DPoPGate
from ..security.passwords import PasswordService
from ..security.ratelimit import Limiter
from ..security.tokens import TokenService
from ..signalbus import SignalBus
from ..store.db import Database
from .abuse import AbusePolicy
from .records import RecordCache


class Storage(Protocol):
    db: Database


class Profiles(Storage, Protocol):
    """Reading a token's own record: the database, behind the per-process record cache."""

    records: RecordCache


class Accounts(Storage, Protocol):
    """Registration: a database and a password hasher."""

    passwords: PasswordService


class Signalling(Storage, Protocol):
    """Revoking sessions and changing users: the database, the signal bus, the token TTL."""

    settings: Settings
    bus: SignalBus


class Revoking(Signalling, Protocol):
    """RFC 7009 revocation: also verifies our tokens and reads the denylist."""

    tokens: TokenService
    denylist: Denylist


class Parts(Accounts, Revoking, Profiles, Protocol):
    """The token endpoint's grants: everything above, metrics, limits and the abuse policy."""

    metrics: Metrics
    limiter: Limiter
    abuse: AbusePolicy
    dpop: DPoPGate
