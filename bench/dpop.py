"""The DPoP row of `make bench`: a DPoP-bound access token, and before each measurement a
file of fresh proofs for `GET /v1/users/me` that the wrk script sends one per request (a
proof is accepted once, and only within 60 s of its `iat`, so they cannot be made ahead
of the run or reused)."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from joserfc import jws
from joserfc.jwk import ECKey

from . import wrk
from .servers import Server

PATH = "/v1/users/me"
# More proofs than one worker answers in a second: running out would replay the last one,
# which the service refuses (401), and the run would count it as a bad status.
PROOFS_PER_SECOND = 4000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Holder:
    """The bench client's ES256 key and its proofs (RFC 9449 §4)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", private=True)
        self.header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}

    def proof(self, method: str, url: str, token: str | None = None) -> str:
        claims: dict[str, object] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            claims["ath"] = _b64(hashlib.sha256(token.encode()).digest())
        return jws.serialize_compact(
            self.header, json.dumps(claims).encode(), self.key, algorithms=["ES256"]
        )


def login(server: Server, holder: Holder, username: str, password: str) -> str:
    """A password grant with a proof: the access token is bound to the holder's key."""
    with server.client() as c:
        reply = c.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
            headers={"DPoP": holder.proof("POST", f"{server.url}/v1/auth/token")},
        )
        reply.raise_for_status()
        body = reply.json()
        if body.get("token_type") != "DPoP":
            raise RuntimeError(f"expected a DPoP-bound token, got {body.get('token_type')}")
        return str(body["access_token"])


def script_maker(server: Server, holder: Holder, token: str) -> Callable[[float], str]:
    """Builds, for a measurement of `seconds`, the wrk script and its proofs file."""
    url = f"{server.url}{PATH}"
    folder = Path(tempfile.mkdtemp(prefix="bench-dpop-"))
    auth = f"DPoP {token}"

    def make(seconds: float) -> str:
        proofs = folder / "proofs.txt"
        count = max(1000, int(seconds * PROOFS_PER_SECOND))
        proofs.write_text("".join(holder.proof("GET", url, token) + "\n" for _ in range(count)))
        return f"""
wrk.path = {wrk.lua_string(PATH)}
local auth = {wrk.lua_string(auth)}
local proofs = {{}}
for line in io.lines({wrk.lua_string(str(proofs))}) do proofs[#proofs + 1] = line end
local sent = 0
function request()
  sent = sent + 1
  local proof = proofs[math.min(sent, #proofs)]
  return wrk.format(nil, nil, {{["Authorization"] = auth, ["DPoP"] = proof}})
end
"""

    return make
