"""The caller's own profile."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import document_response

from ..domain import identity
from ..models.docs import Me
from ..models.users import ExternalPublic
from ..security.authn import current_principal, require_token
from .current import services


def make_blueprint() -> Blueprint:
    bp = Blueprint("users", __name__, url_prefix="/users")

    @bp.get("/me")
    @require_token
    @document_response(Me)
    async def me() -> Any:  # dict | UserPublic | ClientPublic, served as JSON
        """The caller's profile; for a client token, the client."""
        principal = current_principal()
        if principal.is_external:  # no local record: the verified token is the profile
            return ExternalPublic(
                issuer=str(principal.issuer),
                id=principal.sub,
                sub=str(principal.external_sub),
                client_id=principal.client_id,
                role=principal.role or "user",
                scopes=sorted(principal.scopes),
            ).model_dump()
        return await identity.profile(services(), principal)

    return bp
