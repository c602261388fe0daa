"""One typed Settings class; validators refuse unsafe combinations at start-up.

Everything the settings name is parsed here, once: the trusted-issuers file included
(`issuers`). The value parsers live in `settings/`; this module imports no models."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .redisclient import check_url
from .settings import checks
from .settings.checks import unsafe_problems
from .settings.issuers import IssuerConfig, load_issuers
from .settings.limits import Limit, parse_limits
from .settings.values import (
    DEV_CERT_MARKER,
    Network,
    check_origins,
    database_driver,
    networks,
    plain,
    redact_url,
)

__all__ = ["DEFAULT_ISSUER", "DEV_CERT_MARKER", "Limit", "Settings", "parse_limits"]

DEFAULT_ISSUER = checks.DEFAULT_ISSUER


class Settings(BaseSettings):
    """Configuration from `PORTCULLIS_*` environment variables and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="PORTCULLIS_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "production"] = "development"
    debug: bool = False
    data_dir: Path = Path("var")
    database_url: SecretStr | None = None
    # Connections per worker process: replicas x workers x (pool + overflow) must stay
    # within the server's max_connections (docs/configuration.md).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int | None = Field(default=None, ge=0, le=200)  # unset: = pool size
    database_pool_size: int | None = Field(default=None, ge=1, le=200)  # old name
    db_pgbouncer: bool = False  # behind PgBouncer in transaction mode
    redis_url: SecretStr | None = None
    signing_keys_file: Path | None = None
    issuer: str = DEFAULT_ISSUER
    audience: str = "portcullis"
    access_token_ttl: int = Field(default=600, ge=30, le=86400)
    refresh_token_ttl: int = Field(default=1209600, ge=60, le=31536000)
    cors_origins: Annotated[list[str], NoDecode] = []
    cors_credentials: bool = False
    trusted_proxies: Annotated[list[Network], NoDecode] = []
    # The one header the trusted proxies set (the other is never read), and the IPv6
    # prefix length that clients are keyed by for limits, failure counts and blocks.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    ipv6_prefix: int = Field(default=64, ge=32, le=128)
    rate_limit_default: str = "1200/minute"
    rate_limit_token: str = "20/minute"  # noqa: S105 - a rate, not a secret
    rate_limit_register: str = "10/hour"
    # Failed passwords: per (account, client address) budget ; account-wide ceiling.
    rate_limit_login: str = "5/minute;100/hour"
    # Per client IP on GET /openapi.json (policy "openapi").
    rate_limit_openapi: str = "60/minute"
    max_body_bytes: int = Field(default=65536, ge=1024, le=64 * 1024 * 1024)
    max_inflight: int = Field(default=512, ge=1, le=100000)
    inflight_wait_seconds: float = Field(default=1.0, ge=0, le=30)
    metrics_allow: Annotated[list[Network], NoDecode] = [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    block_after: str = "50/minute"
    block_seconds: int = Field(default=300, ge=1, le=86400)
    block_exempt: Annotated[list[Network], NoDecode] = []
    # Rotation and shutdown for several replicas behind a balancer.
    key_activation_seconds: int = Field(default=600, ge=0, le=7 * 86400)
    drain_seconds: float = Field(default=5, ge=0, le=300)
    migrate_on_start: bool = True  # off: a migration job upgrades; replicas only check
    trusted_issuers: Path | None = None  # JSON file of external token issuers
    dpop_nonce: bool = False  # demand DPoP server nonces (RFC 9449 §8, §9)
    dpop_required: bool = False  # refuse token requests without a DPoP proof
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] | None = None  # None: console only on a tty
    certfile: Path = Path("certs/server.pem")
    # OWASP Password Storage cheat sheet minimum for Argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)
    _issuers: tuple[IssuerConfig, ...] = PrivateAttr(default=())
    _login_limits: tuple[Limit, Limit] = PrivateAttr()  # set by `_parse_login_limits`

    @field_validator("env", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        """`LOG_LEVEL=info` and `ENV=Production` mean what they say."""
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: Any, info: ValidationInfo) -> Any:
        """Any case; production logs are JSON, always."""
        value = value.strip().lower() or None if isinstance(value, str) else value
        if value == "console" and info.data.get("env") == "production":
            raise ValueError("console logs are refused in production (JSON only)")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return check_origins(value)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_driver(cls, value: Any) -> Any:
        return database_driver(value)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_scheme(cls, value: Any) -> Any:
        text = plain(value)
        if text is not None:
            check_url(text)
        return text

    @field_validator("trusted_proxies", "metrics_allow", "block_exempt", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        return networks(value)

    @field_validator("forwarded_header", mode="before")
    @classmethod
    def _header_name(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "rate_limit_default",
        "rate_limit_token",
        "rate_limit_register",
        "rate_limit_openapi",
        "block_after",
    )
    @classmethod
    def _check_limits(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("rate_limit_login")
    @classmethod
    def _check_login_limits(cls, value: str) -> str:
        if len(parse_limits(value)) != 2:
            raise ValueError("expected two limits: per account and address ; account-wide")
        return value

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?", value):
            raise ValueError("issuer must be an http(s) URL without query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _read_issuers(self) -> Settings:
        """The trusted-issuers file, read and checked once, here: a bad file stops the
        service at start-up, and nothing reads it again (`issuers`)."""
        if self.trusted_issuers is not None:
            try:
                self._issuers = load_issuers(self.trusted_issuers)
            except ValueError as exc:
                raise ValueError(f"PORTCULLIS_TRUSTED_ISSUERS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _parse_login_limits(self) -> Settings:
        """`RATE_LIMIT_LOGIN` parsed once, here (checked above to hold exactly two)."""
        pair, ceiling = parse_limits(self.rate_limit_login)
        self._login_limits = (pair, ceiling)
        return self

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        """Every unsafe combination at once, one line each, naming the variable to change."""
        problems = unsafe_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # Derived values ---------------------------------------------------------

    @property
    def database_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'portcullis.db'}"

    @property
    def issuers(self) -> tuple[IssuerConfig, ...]:
        """The entries of `PORTCULLIS_TRUSTED_ISSUERS` (empty when unset)."""
        return self._issuers

    @property
    def login_limits(self) -> tuple[Limit, Limit]:
        """`RATE_LIMIT_LOGIN`: the (account, address) budget and the account-wide ceiling."""
        return self._login_limits

    @property
    def pool_size(self) -> int:
        """Connections kept per worker process (`DB_POOL_SIZE`, or its old name)."""
        if "db_pool_size" not in self.model_fields_set and self.database_pool_size is not None:
            return self.database_pool_size
        return self.db_pool_size

    @property
    def max_overflow(self) -> int:
        """Extra connections a worker may open in a burst (unset: as many as the pool)."""
        return self.pool_size if self.db_max_overflow is None else self.db_max_overflow

    @property
    def keys_file(self) -> Path:
        return self.signing_keys_file or self.data_dir / "keys" / "jwks.json"

    @property
    def redis_dsn(self) -> str | None:
        return self.redis_url.get_secret_value() if self.redis_url is not None else None

    def limits(self, policy: str) -> tuple[Limit, ...]:
        text = {
            "default": self.rate_limit_default,
            "token": self.rate_limit_token,
            "register": self.rate_limit_register,
            "login": self.rate_limit_login,
            "block": self.block_after,
        }[policy]
        return parse_limits(text)

    def redacted(self) -> dict[str, Any]:
        """The settings in effect as JSON-able values, secrets (and URL passwords) hidden:
        the database and key file actually used, not the unset variables that default them."""
        effective = self.model_dump() | {
            "database_url": SecretStr(self.database_dsn),
            "signing_keys_file": self.keys_file,
        }
        out: dict[str, Any] = {}
        for name, value in effective.items():
            if isinstance(value, SecretStr):
                out[name] = redact_url(value.get_secret_value())
            elif isinstance(value, list):
                out[name] = [str(item) for item in value]
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out
