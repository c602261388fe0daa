"""The trusted-issuers file (`PORTCULLIS_TRUSTED_ISSUERS`): its entries, read and checked
once, when the settings are parsed (`Settings.issuers`)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class IssuerConfig(BaseModel):
    """One entry of the trusted-issuers file (see docs/configuration.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str
    audience: str = Field(min_length=1)
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwks_uri: str | None = None
    ca_file: Path | None = None
    require_typ: str | None = "at+jwt"
    scope_claim: str = "scope"
    roles_claim: str | None = None
    admin_roles: tuple[str, ...] = ()
    leeway: int = Field(default=60, ge=0, le=300)
    max_token_age: int | None = Field(default=None, ge=1)

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{value!r} must be an https URL without query or fragment")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [alg for alg in value if alg not in ASYMMETRIC]
        if refused or not value:
            raise ValueError(
                f"algorithms {refused or '[]'} refused: only asymmetric ones "
                f"({', '.join(sorted(ASYMMETRIC))}); never none or HS*"
            )
        return value

    @model_validator(mode="after")
    def _ca_file_exists(self) -> IssuerConfig:
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        return self


def load_issuers(path: Path) -> tuple[IssuerConfig, ...]:
    """Read and check the trusted-issuers file (start-up only); ValueError names the fault."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, list):
        raise ValueError(f"{path}: must be a JSON list of issuers")
    configs: list[IssuerConfig] = []
    for index, entry in enumerate(document):
        try:
            configs.append(IssuerConfig.model_validate(entry))
        except ValueError as exc:
            first = str(exc).splitlines()
            raise ValueError(f"{path}: issuer #{index + 1}: {' '.join(first[1:3])}") from None
    issuers = [c.issuer for c in configs]
    if len(set(issuers)) != len(issuers):
        raise ValueError(f"{path}: an issuer is listed twice")
    return tuple(configs)
