"""Request-scoped accessor: the current app's `Services` (valid inside a request or an
app context). The request's authentication has its own accessor in security/authn.py."""

from __future__ import annotations

from quart import current_app

from ..services import EXTENSION, Services


def services() -> Services:
    svc: Services = current_app.extensions[EXTENSION]
    return svc
