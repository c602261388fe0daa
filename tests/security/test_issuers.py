"""External issuers, unit level: configuration, key fetching and the token rules, with
generated keys and a local HTTPS server standing in for the provider's endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from service.security import issuer_fetch, issuer_keys, issuers
from service.security.issuer_keys import IssuerKeys
from service.security.issuers import Rejected, external_subject, verify_external
from service.settings.issuers import IssuerConfig, load_issuers
from tests.support.jwks_server import JsonServer, json_server


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonServer]:
    with json_server(tmp_path_factory.mktemp("idp")) as server:
        yield server


def ec_key(kid: str) -> ECKey:
    key = ECKey.generate_key("P-256", private=True)
    key.ensure_kid()
    key.dict_value["kid"] = kid
    return key


def public(*keys: Any) -> dict[str, Any]:
    out = []
    for key in keys:
        data = key.as_dict(private=False)
        data.update(kid=key.kid, use="sig")
        out.append(data)
    return {"keys": out}


def mint(key: Any, claims: dict[str, Any], alg: str = "ES256", **header: Any) -> str:
    head = {"alg": alg, "typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(
        {k: v for k, v in head.items() if v is not None}, claims, key, algorithms=[alg]
    )


def claims_for(issuer: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": issuer,
        "aud": "portcullis",
        "sub": "alice",
        "client_id": "spa",
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
        "scope": "notes:read notes:write admin openid",
    }
    return base | extra


def header_of(token: str) -> dict[str, Any]:
    import base64

    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture
def realm(idp: JsonServer, request: pytest.FixtureRequest) -> tuple[IssuerKeys, ECKey]:
    """An issuer on the test server, with its own path, one key and discovery."""
    name = request.node.name.replace("[", "_").replace("]", "_")
    issuer = f"{idp.base}/realms/{name}"
    key = ec_key(f"{name}-k1")
    idp.serve(
        f"/realms/{name}/.well-known/openid-configuration",
        {"issuer": issuer, "jwks_uri": f"{issuer}/certs"},
    )
    idp.serve(f"/realms/{name}/certs", public(key), **{"Cache-Control": "max-age=600"})
    config = IssuerConfig(
        issuer=issuer,
        audience="portcullis",
        algorithms=("ES256",),
        ca_file=idp.ca,
        roles_claim="realm_access.roles",
        admin_roles=("portcullis-admin",),
    )
    return IssuerKeys(config), key


async def check(keys: IssuerKeys, token: str) -> issuers.ExternalClaims:
    return await verify_external(keys, token, header_of(token))


async def rejected(keys: IssuerKeys, token: str) -> str:
    with pytest.raises(Rejected) as caught:
        await check(keys, token)
    return caught.value.reason


# Configuration -----------------------------------------------------------------------


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(
        json.dumps(
            [
                {
                    "issuer": "https://idp.example.com/realms/acme",
                    "audience": "portcullis",
                    "algorithms": ["RS256", "ES256"],
                    "jwks_uri": "https://idp.example.com/realms/acme/protocol/openid-connect/certs",
                    "ca_file": None,
                    "require_typ": "at+jwt",
                    "scope_claim": "scope",
                    "roles_claim": "realm_access.roles",
                    "admin_roles": ["admin"],
                    "leeway": 60,
                    "max_token_age": None,
                },
                {"issuer": "https://tenant.auth0.com/", "audience": "https://api"},
            ]
        )
    )
    first, second = load_issuers(path)
    assert first.algorithms == ("RS256", "ES256") and second.require_typ == "at+jwt"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"issuer": "https://a", "audience": "x", "algorithms": ["HS256"]}, "HS256"),
        ({"issuer": "https://a", "audience": "x", "algorithms": ["none"]}, "none"),
        ({"issuer": "http://a", "audience": "x"}, "https"),
        ({"issuer": "https://a", "audience": "x", "jwks_uri": "http://a/k"}, "https"),
        ({"issuer": "https://a"}, "audience"),
        ({"issuer": "https://a", "audience": "x", "secret": "s"}, "secret"),
    ],
)
def test_unsafe_or_wrong_entries_are_refused(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ValueError, match=message):
        load_issuers(path)


def test_duplicates_and_garbage_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"issuer": "https://a", "audience": "x"}] * 2))
    with pytest.raises(ValueError, match="twice"):
        load_issuers(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        load_issuers(path)


def test_external_subjects_never_collide() -> None:
    a = external_subject("https://a", "bob")
    assert a != external_subject("https://b", "bob") and a.startswith("ext:") and len(a) <= 36


# Tokens ------------------------------------------------------------------------------


async def test_a_good_token_is_accepted_and_mapped(realm: tuple[IssuerKeys, ECKey]) -> None:
    keys, key = realm
    issuer = keys.config.issuer
    plain = await check(keys, mint(key, claims_for(issuer)))
    assert plain.role == "user" and plain.scopes == {"notes:read", "notes:write"}
    assert plain.subject == external_subject(issuer, "alice") and plain.client_id == "spa"
    admin = await check(
        keys,
        mint(
            key,
            claims_for(issuer, realm_access={"roles": ["portcullis-admin"]}, scope=["notes:read"]),
        ),
    )
    assert admin.role == "admin" and admin.scopes == {"notes:read", "admin"}


async def test_foreign_stale_and_forged_tokens_are_refused(
    realm: tuple[IssuerKeys, ECKey],
) -> None:
    keys, key = realm
    issuer = keys.config.issuer
    assert await rejected(keys, mint(key, claims_for(issuer, aud="other-api"))) == "invalid_claim"
    assert await rejected(keys, mint(key, claims_for(issuer + "x"))) == "invalid_claim"
    old = claims_for(issuer, exp=int(time.time()) - 120)
    assert await rejected(keys, mint(key, old)) == "expired"
    assert await rejected(keys, mint(key, claims_for(issuer), typ="JWT")) == "bad_type"
    for foreign in ({"jku": f"{issuer}/evil"}, {"x5u": "https://evil"}, {"jwk": {"kty": "EC"}}):
        assert await rejected(keys, mint(key, claims_for(issuer), **foreign)) == "bad_header"
    # same kid, same issuer claim, another key: the signature gives it away
    impostor = ec_key(key.kid or "")
    assert await rejected(keys, mint(impostor, claims_for(issuer))) == "bad_signature"
    # an algorithm the issuer is not allowed: RS256 and HMAC with the public key
    rsa = RSAKey.generate_key(2048, private=True)
    rsa.dict_value["kid"] = str(key.kid)
    assert await rejected(keys, mint(rsa, claims_for(issuer), alg="RS256")) == "bad_algorithm"
    hmac = OctKey.import_key(json.dumps(public(key)["keys"][0]).encode())
    hmac.dict_value["kid"] = str(key.kid)
    assert await rejected(keys, mint(hmac, claims_for(issuer), alg="HS256")) == "bad_algorithm"
    none = header_of(mint(key, claims_for(issuer))) | {"alg": "none"}
    token = mint(key, claims_for(issuer))
    import base64

    forged = base64.urlsafe_b64encode(json.dumps(none).encode()).rstrip(b"=").decode()
    unsigned = f"{forged}.{token.split('.')[1]}."
    assert await rejected(keys, unsigned) == "bad_algorithm"


async def test_typ_may_be_relaxed_and_age_capped(idp: JsonServer, tmp_path: Path) -> None:
    key = ec_key("relaxed-k1")
    issuer = f"{idp.base}/relaxed"
    idp.serve("/relaxed/keys", public(key))
    base = {
        "issuer": issuer,
        "audience": "portcullis",
        "algorithms": ("ES256",),
        "ca_file": idp.ca,
        "jwks_uri": f"{issuer}/keys",
    }
    keycloak = IssuerKeys(IssuerConfig(**base, require_typ=None, scope_claim="scp"))
    accepted = await check(keycloak, mint(key, claims_for(issuer, scp=["notes:write"]), typ="JWT"))
    assert accepted.scopes == {"notes:write"}
    aged = IssuerKeys(IssuerConfig(**base, max_token_age=60, leeway=0))
    old = claims_for(issuer, iat=int(time.time()) - 300)
    assert await rejected(aged, mint(key, old)) == "too_old"


async def test_unknown_kids_trigger_one_fetch_per_interval(
    realm: tuple[IssuerKeys, ECKey], idp: JsonServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, key = realm
    issuer = keys.config.issuer
    certs = urlpath(issuer) + "/certs"
    assert await keys.refresh()  # what the background task does first
    await check(keys, mint(key, claims_for(issuer)))
    fetched = idp.hits[certs]
    for n in range(20):  # a flood of made-up kids: at most one refresh
        forged = ec_key(f"made-up-{n}")
        assert await rejected(keys, mint(forged, claims_for(issuer))) == "unknown_key"
    assert idp.hits[certs] == fetched + 1
    # the provider rotates: a new kid after the interval is fetched and accepted
    rotated = ec_key("rotated")
    idp.serve(certs, public(rotated, key))
    assert await rejected(keys, mint(rotated, claims_for(issuer))) == "unknown_key"  # too soon
    monkeypatch.setattr(issuer_keys, "FORCED_REFRESH_SECONDS", 0.0)
    assert (await check(keys, mint(rotated, claims_for(issuer)))).sub == "alice"


async def test_cached_keys_outlive_the_provider(
    realm: tuple[IssuerKeys, ECKey], idp: JsonServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, key = realm
    issuer = keys.config.issuer
    await check(keys, mint(key, claims_for(issuer)))
    certs = urlpath(issuer) + "/certs"
    idp.routes[certs] = issuers_down = idp.routes[certs].__class__(503, {"error": "down"})
    assert issuers_down.status == 503
    assert not await keys.refresh() and keys.state == "unavailable"
    assert (await check(keys, mint(key, claims_for(issuer)))).sub == "alice"  # still works
    monkeypatch.setattr(issuer_keys, "FORCED_REFRESH_SECONDS", 0.0)
    assert await rejected(keys, mint(ec_key("new"), claims_for(issuer))) == "unknown_key"


async def test_fetching_is_bounded(idp: JsonServer) -> None:
    issuer = f"{idp.base}/bounded"
    config = IssuerConfig(issuer=issuer, audience="portcullis", ca_file=idp.ca)
    # discovery that points at another origin is refused
    other = idp.base.replace("127.0.0.1", "localhost")
    idp.serve(
        "/bounded/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": f"{other}/k"}
    )
    keys = IssuerKeys(config)
    assert not await keys.refresh() and keys.state == "unavailable"
    assert idp.hits["/k"] == 0
    # a redirect to another origin is not followed, and a huge document is not read
    fetcher = issuer_fetch.Fetcher(idp.ca)
    idp.routes["/hop"] = idp.routes["/bounded/.well-known/openid-configuration"].__class__(
        302, {}, {"Location": f"{other}/k"}
    )
    with pytest.raises(issuer_fetch.FetchError, match="origin"):
        await fetcher.get_json(f"{idp.base}/hop")
    idp.serve("/huge", b'{"keys": ["' + b"x" * (issuer_fetch.MAX_DOCUMENT_BYTES + 10) + b'"]}')
    with pytest.raises(issuer_fetch.FetchError, match="too large"):
        await fetcher.get_json(f"{idp.base}/huge")
    await fetcher.close()


def urlpath(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def test_the_shipped_example_file_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "issuers.example.json"
    keycloak, entra = load_issuers(example)
    assert keycloak.require_typ is None and entra.scope_claim == "scp"
