"""The app factory: wires everything, does nothing else."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart
from quart_cors import cors
from quart_rate_limiter import limit_blueprint
from quart_schema import QuartSchema

from . import guard
from .api import admin, auth, notes, openapi, ops, users
from .api.problems import register_error_handlers
from .api.responses import PortcullisQuart, use_own_make_response
from .config import Settings
from .logging import choose_format, configure_logging, get_logger
from .metrics import Metrics
from .middleware import Gate
from .security.cors import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE, CORS_METHODS
from .security.proxies import ProxyResolver
from .security.ratelimit import named_limits
from .services import EXTENSION, Services
from .version import package_version

log = get_logger("portcullis.app")


def create_app(settings: Settings | None = None, *, metrics: Metrics | None = None) -> Quart:
    settings = settings or Settings()
    configure_logging(settings.log_level, fmt=choose_format(settings.log_format, settings.env))
    app: Quart = PortcullisQuart("service", static_folder=None)
    # Werkzeug answers `//` in a path with a redirect built from the request's Host
    # header; no path here has an empty segment, so there is nothing to redirect to.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        DEBUG=settings.debug,
        PROPAGATE_EXCEPTIONS=False,
        JSON_SORT_KEYS=False,
        BODY_TIMEOUT=10,
        RESPONSE_TIMEOUT=60,
    )
    QuartSchema(
        app,
        openapi_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info={
            "title": "Portcullis",
            "version": package_version(),
            "description": openapi.DESCRIPTION,
        },
        tags=openapi.TAGS,
        security_schemes=openapi.SECURITY_SCHEMES,
        security=[{"bearer": []}],
        openapi_provider_class=openapi.PortcullisOpenAPI,
    )
    use_own_make_response(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    dependencies = ("database", "redis") if settings.redis_dsn else ("database",)
    svc = Services(settings, metrics or Metrics(dependencies))
    app.extensions[EXTENSION] = svc

    register_error_handlers(app, svc.metrics)
    guard.install(app, svc)
    app.before_serving(svc.start)
    app.after_serving(svc.stop)

    app.register_blueprint(ops.make_blueprint(settings))
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    limit_blueprint(v1, limits=named_limits("default", settings.limits("default"), "principal"))
    v1.register_blueprint(auth.make_blueprint(settings))
    v1.register_blueprint(users.make_blueprint())
    v1.register_blueprint(notes.make_blueprint())
    v1.register_blueprint(admin.make_blueprint())
    app.register_blueprint(v1)

    if settings.cors_origins:
        app = cors(
            app,
            allow_origin=list(settings.cors_origins),
            allow_credentials=settings.cors_credentials,
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
            max_age=CORS_MAX_AGE,
        )

    quart_app: Any = app.asgi_app
    gate: Any = Gate(
        quart_app,
        resolver=ProxyResolver(settings.trusted_proxies, settings.forwarded_header),
        metrics=svc.metrics,
        issuer=settings.issuer,
        max_inflight=settings.max_inflight,
        inflight_wait=settings.inflight_wait_seconds,
        max_body_bytes=settings.max_body_bytes,
        client_keys=svc.client_keys,
    )
    app.asgi_app = gate  # type: ignore[method-assign]
    return app
