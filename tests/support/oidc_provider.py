"""Run panva's oidc-provider (Node.js) as a local HTTPS identity provider for the
external-issuer tests. Its npm packages are installed on first use from the committed
lock file; without Node.js or the npm registry the tests skip and say why."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey

from service.devcerts import make_dev_certs
from tests.support.server import free_port

from .npm import NODE, npm_ready

HERE = Path(__file__).parent / "oidc"
AUDIENCES = {"urn:portcullis": "portcullis", "urn:other": "other-api"}
CLIENTS = {  # client id → (secret, roles)
    "robot": ("robot-secret-robot-secret", []),
    "operator": ("operator-secret-operator-secret", ["portcullis-admin"]),
}


def unavailable() -> str | None:
    """Why the provider cannot run here, or None once its packages are installed."""
    return npm_ready(HERE, "oidc-provider")


def new_key(kid: str) -> dict[str, Any]:
    data: dict[str, Any] = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    data.update(kid=kid, use="sig", alg="ES256")
    return data


@dataclass
class Provider:
    folder: Path
    port: int
    keys: list[dict[str, Any]]
    certs: dict[str, Path] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.certs["ca"]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def start(self) -> None:
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "cert": str(self.certs["cert"]),
            "key": str(self.certs["key"]),
            "jwks": {"keys": self.keys},
            "resources": AUDIENCES,
            "scope": "notes:read notes:write admin",
            "clients": [
                {
                    "client_id": client_id,
                    "client_secret": secret,
                    "grant_types": ["client_credentials"],
                    "redirect_uris": [],
                    "response_types": [],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "id_token_signed_response_alg": "ES256",
                }
                for client_id, (secret, _) in CLIENTS.items()
            ],
            "roles": {client_id: roles for client_id, (_, roles) in CLIENTS.items()},
        }
        path = self.folder / "provider.json"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        with (self.folder / "provider.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [str(NODE), str(HERE / "provider.mjs"), str(path)],
                cwd=HERE,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.issuer}/jwks", verify=self.tls(), timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError((self.folder / "provider.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def rotate(self) -> str:
        """Restart signing with a new key (the old one stays published)."""
        kid = f"k{len(self.keys) + 1}"
        self.keys.insert(0, new_key(kid))
        self.stop()
        self.start()
        return kid

    def token(
        self,
        client_id: str,
        *,
        scope: str = "notes:read notes:write",
        resource: str = "urn:portcullis",
    ) -> str:
        secret = CLIENTS[client_id][0]
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            auth=(client_id, secret),
            verify=self.tls(),
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


@contextlib.contextmanager
def oidc_provider(folder: Path) -> Iterator[Provider]:
    provider = Provider(folder, free_port(), [new_key("k1")])
    provider.certs = make_dev_certs(folder / "certs")
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
