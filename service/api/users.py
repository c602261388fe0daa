"""The caller's own profile."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import document_response

from ..errors import InactivePrincipal
from ..models.docs import Me
from ..models.users import ClientPublic, ExternalPublic, UserPublic
from ..security.authn import current_principal, require_token
from ..store import users as user_store
from .current import services


def make_blueprint() -> Blueprint:
    bp = Blueprint("users", __name__, url_prefix="/users")

    @bp.get("/me")
    @require_token
    @document_response(Me)
    async def me() -> dict[str, Any]:
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
        svc = services()
        async with svc.db.read() as conn:
            if principal.is_client:
                client = await user_store.get_client(conn, client_id=principal.client_id)
                if client is None or client.disabled:
                    raise InactivePrincipal("The client no longer exists.")
                return ClientPublic.from_row(client).model_dump()
            user = await user_store.get_user(conn, user_id=principal.sub)
        if user is None or user.disabled:
            raise InactivePrincipal("The user no longer exists.")
        return UserPublic.from_row(user).model_dump()

    return bp
