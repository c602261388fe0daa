"""The caller's own profile."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request
from quart_schema import document_response

from ..domain import accounts, identity
from ..models.docs import Me
from ..models.lifecycle import AccountDeletion, PasswordChange
from ..models.users import ExternalPublic
from ..security.authn import current_principal, require_token
from .body import json_body
from .current import services
from .documented import problems, responds
from .responses import no_content


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

    @bp.put("/me/password")
    @require_token
    @json_body(PasswordChange)
    @responds(204, "Changed; every other session of the user is revoked.")
    @problems(403, "A wrong `current_password` (a failed login), or not a user's token.")
    async def change_password(data: PasswordChange) -> Response:
        """Change the caller's password. Every other login session of the user is
        revoked on every replica; the caller's own session keeps working."""
        await accounts.change_password(
            services(),
            current_principal(),
            current=data.current_password,
            new=data.new_password,
            ip=request.remote_addr or "",
        )
        return no_content()

    @bp.delete("/me")
    @require_token
    @json_body(AccountDeletion)
    @responds(204, "Deleted, with the user's notes; every token of theirs is refused.")
    @problems(403, "A wrong `password` (a failed login), or not a user's token.")
    @problems(409, "The caller is the last enabled administrator.")
    async def delete_me(data: AccountDeletion) -> Response:
        """Delete the caller's account, its notes and idempotency records; every token
        of the user is refused on every replica. The last enabled admin cannot."""
        await accounts.delete_account(
            services(), current_principal(), password=data.password, ip=request.remote_addr or ""
        )
        return no_content()

    return bp
