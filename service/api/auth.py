"""Registration, the RFC 6749 token endpoint and RFC 7009 revocation."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request
from quart_rate_limiter import rate_limit
from quart_schema import document_response, operation_id, validate_response

from ..config import Settings
from ..domain import grants, identity
from ..errors import OAuthError
from ..models.docs import Revoked
from ..models.users import RegisterIn, RevokeForm, TokenForm, TokenOut, UserPublic
from ..security.authn import public
from ..security.dpop_gate import proof_request
from ..security.ratelimit import named_limits
from .body import form_body, json_body, read_form
from .current import announce_limits, services
from .documented import oauth_errors, problems

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def make_blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("auth", __name__, url_prefix="/auth")

    @bp.post("/register")
    @rate_limit(limits=named_limits("register", settings.limits("register"), "ip"))
    @public
    @json_body(RegisterIn)
    @validate_response(UserPublic, 201)
    @operation_id("registerUser")
    @problems(409, "The username is taken.")
    async def register(data: RegisterIn) -> tuple[UserPublic, int]:
        """Create a user account (role `user`)."""
        user = await identity.register(
            services(), username=data.username, password=data.password, ip=request.remote_addr
        )
        return UserPublic.from_row(user), 201

    @bp.post("/token")
    @rate_limit(limits=named_limits("token", settings.limits("token"), "ip"))
    @public
    @form_body(TokenForm)
    @document_response(TokenOut)
    @operation_id("issueToken")
    @oauth_errors(400, 401)
    async def token() -> tuple[dict[str, Any], int, dict[str, str]]:
        """RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`.
        With a `DPoP` proof header (RFC 9449) the tokens are bound to its key:
        `token_type` is `DPoP`."""
        form = await read_form()
        svc = services()
        ip = request.remote_addr or "unknown"
        grant = form.get("grant_type")
        result: TokenOut
        if grant in ("password", "refresh_token", "client_credentials"):
            # RFC 9449 §5: the proof is checked before the grant, and binds its tokens.
            jkt = await svc.dpop.token_request(proof_request(request))
        if grant == "password":
            result = await grants.password_grant(svc, form, ip, announce_limits, jkt=jkt)
        elif grant == "refresh_token":
            result = await grants.refresh_grant(
                svc, form, request.headers.get("Authorization"), ip, jkt=jkt
            )
        elif grant == "client_credentials":
            result = await grants.client_credentials_grant(
                svc, form, request.headers.get("Authorization"), ip, jkt=jkt
            )
        elif not grant:
            raise OAuthError("invalid_request", "grant_type is required.")
        else:
            raise OAuthError("unsupported_grant_type", "This grant type is not supported.")
        return result.model_dump(exclude_none=True), 200, NO_STORE

    @bp.after_app_request
    async def dpop_nonce(response: Response) -> Response:
        """`DPoP-Nonce` on every answer to a DPoP request while nonces are demanded."""
        for name, value in services().dpop.response_headers(request).items():
            response.headers[name] = value
        return response

    @bp.post("/revoke")
    @public
    @form_body(RevokeForm)
    @document_response(Revoked)
    @operation_id("revokeToken")
    @oauth_errors(400)
    async def revoke() -> tuple[dict[str, Any], int, dict[str, str]]:
        """RFC 7009 revocation: possession of the token is enough; always 200."""
        form = await read_form()
        if "token" not in form:
            raise OAuthError("invalid_request", "token is required.")
        await identity.revoke(
            services(), form["token"], form.get("token_type_hint"), request.remote_addr or ""
        )
        return {}, 200, NO_STORE

    return bp
