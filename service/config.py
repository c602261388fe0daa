"""One typed Settings class; validators refuse unsafe combinations at start-up."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .redisclient import check_url

DEFAULT_ISSUER = "https://localhost:8443"
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+\s*)?(second|minute|hour|day)s?\s*$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limit:
    """`count` requests per `window` seconds."""

    count: int
    window: int


def parse_limits(text: str) -> tuple[Limit, ...]:
    """Parse `100/hour;10/minute` (also `5/10 seconds`) into limits."""
    limits = []
    for part in text.split(";"):
        if not part.strip():
            continue
        match = _LIMIT_RE.match(part)
        if match is None:
            raise ValueError(f"invalid rate limit {part.strip()!r} (expected e.g. 100/minute)")
        count = int(match.group(1))
        multiplier = int(match.group(2) or 1)
        if count < 1 or multiplier < 1:
            raise ValueError(f"invalid rate limit {part.strip()!r}: must be positive")
        limits.append(Limit(count, multiplier * _UNITS[match.group(3)]))
    if not limits:
        raise ValueError("at least one rate limit is required")
    return tuple(limits)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _plain(value: Any) -> str | None:
    """A secret setting's text, or None when unset or empty."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return None if value is None or value == "" else str(value)


def _networks(value: Any) -> Any:
    return [ipaddress.ip_network(item, strict=False) for item in _split_csv(value)]


class Settings(BaseSettings):
    """Configuration from `PORTCULLIS_*` environment variables and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="PORTCULLIS_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "production"] = "development"
    debug: bool = False
    data_dir: Path = Path("var")
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
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
    certfile: Path = Path("certs/server.pem")
    # OWASP Password Storage cheat sheet minimum for Argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)

    @field_validator("env", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        """`LOG_LEVEL=info` and `ENV=Production` mean what they say."""
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        origins = _split_csv(value)
        for origin in origins:
            if origin == "*":
                continue
            if not re.fullmatch(
                r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9a-fA-F:]+\](:\d{1,5})?", origin
            ):
                raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port] exactly")
        return origins

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_driver(cls, value: Any) -> Any:
        """Pick the async drivers this service ships with; refuse anything else."""
        text = _plain(value)
        if text is None:
            return None
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if text.startswith(plain):
                text = driver + text[len(plain) :]
        if not text.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be a postgresql:// (asyncpg) or sqlite:// (aiosqlite) URL")
        return text

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_scheme(cls, value: Any) -> Any:
        text = _plain(value)
        if text is not None:
            check_url(text)
        return text

    @field_validator("trusted_proxies", "metrics_allow", "block_exempt", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        return _networks(value)

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

    @field_validator("trusted_issuers")
    @classmethod
    def _check_issuers(cls, value: Path | None) -> Path | None:
        if value is not None:
            from .models.issuers import load_issuers

            load_issuers(value)  # start-up I/O: a bad file stops the service here
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        """Every unsafe combination at once, one line each, naming the variable to change."""
        problems: list[str] = []
        if "*" in self.cors_origins and self.cors_credentials:
            problems.append(
                "PORTCULLIS_CORS_CREDENTIALS: credentials with the origin '*' are refused"
            )
        if self.env == "production":
            if self.debug:
                problems.append("PORTCULLIS_DEBUG: must be off in production")
            if self.issuer == DEFAULT_ISSUER:
                problems.append("PORTCULLIS_ISSUER: set it to the public URL in production")
            elif not self.issuer.startswith("https://"):
                problems.append("PORTCULLIS_ISSUER: must be an https URL in production")
            if "*" in self.cors_origins:
                problems.append("PORTCULLIS_CORS_ORIGINS: '*' is refused in production")
            if _is_dev_certificate(self.certfile):
                problems.append(
                    f"PORTCULLIS_CERTFILE: {self.certfile} is the development certificate; "
                    "serve a real one and name it here"
                )
            if self.database_dsn.startswith("postgresql") and not os.access(
                self.keys_file, os.R_OK
            ):
                # Replicas sharing a database must share keys; each generating its own
                # would make tokens fail across replicas.
                problems.append(
                    f"PORTCULLIS_SIGNING_KEYS_FILE: {self.keys_file} is missing or unreadable; "
                    "replicas sharing PostgreSQL must all load one key file (create it once "
                    "with `portcullis keys rotate --activate-now` and mount it)"
                )
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
                out[name] = _redact_url(value.get_secret_value())
            elif isinstance(value, list):
                out[name] = [str(item) for item in value]
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def _redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


DEV_CERT_MARKER = "Portcullis Development"


def _is_dev_certificate(path: Path) -> bool:
    """True when `path` is a certificate made by `make certs`."""
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return DEV_CERT_MARKER in cert.issuer.rfc4514_string()
