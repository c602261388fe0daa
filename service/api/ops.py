"""Operational routes: probes, metrics, discovery documents, OpenAPI and docs."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, request
from quart_rate_limiter import rate_exempt, rate_limit
from quart_schema import document_response, hide, operation_id
from swagger_ui_bundle import swagger_ui_path

from ..config import Settings, parse_limits
from ..errors import NotFound
from ..models.docs import Health, JWKSet, Readiness
from ..security.authn import public
from ..security.dpop import ALGORITHMS as DPOP_ALGORITHMS
from ..security.headers import DOCS_CSP
from ..security.ratelimit import named_limits
from .current import services
from .documented import responds
from .openapi_document import LazyDocument
from .responses import no_content

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Portcullis API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
# Swagger UI 5 (it reads OpenAPI 3.1). No validator badge: it would call an outside host.
DOCS_INIT = (
    'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", '
    "deepLinking: true, validatorUrl: null, tryItOutEnabled: true});\n"
)
_DOCS_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def make_blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("ops", __name__)
    metrics_allow = tuple(settings.metrics_allow)
    docs_dir = Path(swagger_ui_path)
    docs_files = {name: (docs_dir / name).read_bytes() for name in _DOCS_FILES}  # start-up I/O
    openapi_document = LazyDocument()  # this app's, built on the first request

    @bp.get("/healthz")
    @rate_exempt
    @public
    @operation_id("getHealth")
    @document_response(Health)
    async def healthz() -> dict[str, str]:
        """Liveness: 200 while the process serves."""
        return {"status": "ok"}

    @bp.get("/readyz")
    @rate_exempt
    @public
    @operation_id("getReadiness")
    @document_response(Readiness)
    @document_response(Readiness, 503)
    @responds(503, headers=("Retry-After",))
    async def readyz() -> tuple[dict[str, object], int, dict[str, str]]:
        """Readiness: whether this replica can serve.

        503 only when it cannot (database down, or draining after SIGTERM); a Redis
        outage is reported as `degraded` and keeps it in rotation (limits fall back to
        per-process shares meanwhile). An answer is reused for up to a second."""
        svc = services()
        state = await svc.health.ready()
        checks = {"database": state.database, "redis": state.redis}
        body: dict[str, object] = {"checks": checks}
        issuers_ok = True
        if svc.external is not None:  # cached keys keep working: degraded, not down
            body["issuers"] = svc.external.states()
            issuers_ok = all(v == "ok" for v in svc.external.states().values())
        if svc.health.draining:
            checks["server"] = "draining"
        if state.database != "ok" or svc.health.draining:
            return {"status": "unavailable", **body}, 503, {"Retry-After": "5"}
        if state.redis == "unavailable" or not issuers_ok:
            return {"status": "degraded", **body}, 200, {}
        return {"status": "ready", **body}, 200, {}

    @bp.get("/metrics")
    @rate_exempt
    @public
    @hide
    async def metrics() -> Response:
        """Prometheus metrics (only for `PORTCULLIS_METRICS_ALLOW` networks)."""
        try:
            addr = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            raise NotFound() from None
        if not any(addr in net for net in metrics_allow):
            raise NotFound()
        body, content_type = services().metrics.render()
        return Response(body, content_type=content_type)

    @bp.get("/.well-known/jwks.json")
    @rate_exempt
    @public
    @operation_id("getJwks")
    @document_response(JWKSet)
    async def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
        """Public signing keys (RFC 7517 JWK Set)."""
        return services().keys.ring.public_jwks, 200, {"Cache-Control": "public, max-age=300"}

    @bp.get("/.well-known/oauth-authorization-server")
    @rate_exempt
    @public
    async def metadata() -> dict[str, object]:
        """RFC 8414 authorization server metadata."""
        issuer = settings.issuer
        return {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/v1/auth/token",
            "revocation_endpoint": f"{issuer}/v1/auth/revoke",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": ["password", "refresh_token", "client_credentials"],
            "response_types_supported": [],
            "scopes_supported": ["notes:read", "notes:write", "admin"],
            # Only what the token endpoint implements: the first-party client is public
            # (`none`); confidential clients send their secret by Basic or in the body.
            # No client_secret_jwt / private_key_jwt, hence no auth signing algorithms.
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),  # RFC 9449 §5.1
        }

    @bp.get("/openapi.json")
    @rate_limit(limits=named_limits("openapi", parse_limits(settings.rate_limit_openapi), "ip"))
    @public
    @hide
    async def openapi() -> Response:
        """The OpenAPI 3.1 document of every route (cached bytes, with an ETag)."""
        doc = await openapi_document.get(current_app._get_current_object())  # type: ignore[attr-defined]
        if request.if_none_match.contains_weak(doc.etag.strip('"')):
            response = no_content(304)
        else:
            response = Response(doc.body, content_type="application/json")
        response.headers["ETag"] = doc.etag
        response.headers["Cache-Control"] = "no-cache"
        return response

    @bp.get("/docs")
    @rate_exempt
    @public
    @hide
    async def docs() -> Response:
        """Interactive documentation (self-hosted Swagger UI)."""
        response = Response(DOCS_HTML, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    @bp.get("/docs/init.js")
    @rate_exempt
    @public
    @hide
    async def docs_init() -> Response:
        return Response(DOCS_INIT, content_type="text/javascript; charset=utf-8")

    @bp.get("/docs/static/<name>")
    @rate_exempt
    @public
    @hide
    async def docs_static(name: str) -> Response:
        if name not in _DOCS_FILES:
            raise NotFound()
        response = Response(docs_files[name], content_type=_DOCS_FILES[name])
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    return bp
