"""Administration: users, OAuth clients, the audit trail and client blocks."""

from __future__ import annotations

from quart import Blueprint, Response, request
from quart_schema import validate_response

from ..domain import clients, identity
from ..errors import NotFound, ValidationFailed
from ..models.admin import AuditEvent, BlockOut
from ..models.common import Page, PageQuery
from ..models.lifecycle import ClientAdmin, ClientPatch, ClientSecret
from ..models.users import ClientCreate, ClientCreated, UserPatch, UserPublic
from ..security.authn import current_principal, require_scope
from ..security.proxies import block_key
from ..store import audit
from ..store import clients as client_store
from ..store import signals as signal_store
from ..store import users as user_store
from .body import json_body, query
from .current import services
from .documented import problems, responds
from .paging import last_id, read_page
from .responses import no_content


def make_blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin")

    @bp.get("/users")
    @require_scope("admin")
    @query(PageQuery)
    @validate_response(Page[UserPublic])
    async def list_users(query_args: PageQuery) -> Page[UserPublic]:
        """All users, newest first."""
        return await read_page(
            services().db,
            user_store.list_users,
            query_args,
            Page[UserPublic],
            UserPublic.from_row,
            lambda u: (u.created_us, u.id),
        )

    @bp.patch("/users/<user_id>")
    @require_scope("admin")
    @json_body(UserPatch)
    @validate_response(UserPublic)
    @problems(409, "The change would leave no enabled administrator.")
    async def patch_user(user_id: str, data: UserPatch) -> UserPublic:
        """Disable/enable a user or change its role; revokes its live sessions."""
        changes = data.changes()
        if not changes:
            raise ValidationFailed(errors=[{"loc": ["body"], "msg": "disabled or role required"}])
        user = await identity.update_user(
            services(),
            user_id=user_id[:64],
            changes=changes,
            actor=current_principal().sub,
            ip=request.remote_addr or "",
        )
        if user is None:
            raise NotFound()
        return UserPublic.from_row(user)

    @bp.post("/clients")
    @require_scope("admin")
    @json_body(ClientCreate)
    @validate_response(ClientCreated, 201)
    async def create_client(data: ClientCreate) -> tuple[ClientCreated, int]:
        """Create an OAuth client; its secret is shown only in this response."""
        created = await identity.create_client(
            services(),
            name=data.name,
            scopes=list(data.scopes),
            actor=current_principal().sub,
            ip=request.remote_addr,
            dpop_bound_access_tokens=data.dpop_bound_access_tokens,
        )
        return created, 201

    @bp.get("/clients")
    @require_scope("admin")
    @query(PageQuery)
    @validate_response(Page[ClientAdmin])
    async def list_clients(query_args: PageQuery) -> Page[ClientAdmin]:
        """All OAuth clients, newest first (never a secret)."""
        return await read_page(
            services().db,
            client_store.list_clients,
            query_args,
            Page[ClientAdmin],
            ClientAdmin.from_row,
            lambda c: (c.created_us, c.client_id),
        )

    @bp.patch("/clients/<client_id>")
    @require_scope("admin")
    @json_body(ClientPatch)
    @validate_response(ClientAdmin)
    async def patch_client(client_id: str, data: ClientPatch) -> ClientAdmin:
        """Disable/enable a client or change its scopes; disabling or narrowing revokes
        its tokens on every replica."""
        changes = data.changes()
        if not changes:
            raise ValidationFailed(errors=[{"loc": ["body"], "msg": "disabled or scopes required"}])
        client = await clients.update_client(
            services(),
            client_id=client_id[:64],
            changes=changes,
            actor=current_principal().sub,
            ip=request.remote_addr,
        )
        if client is None:
            raise NotFound()
        return ClientAdmin.from_row(client)

    @bp.post("/clients/<client_id>/secret")
    @require_scope("admin")
    @validate_response(ClientSecret)
    async def rotate_client_secret(client_id: str) -> ClientSecret:
        """Rotate the client's secret: the new one is shown only in this answer, and the
        old one stops working at once."""
        secret = await clients.rotate_secret(
            services(),
            client_id=client_id[:64],
            actor=current_principal().sub,
            ip=request.remote_addr,
        )
        if secret is None:
            raise NotFound()
        return ClientSecret(client_id=client_id, client_secret=secret)

    @bp.get("/audit")
    @require_scope("admin")
    @query(PageQuery)
    @validate_response(Page[AuditEvent])
    async def list_audit(query_args: PageQuery) -> Page[AuditEvent]:
        """Security audit events, newest first (read-only: nothing here can change one)."""
        return await read_page(
            services().db,
            audit.list_events,
            query_args,
            Page[AuditEvent],
            AuditEvent.from_row,
            lambda r: (r.id,),
            cursor=last_id,
        )

    @bp.get("/blocks")
    @require_scope("admin")
    @query(PageQuery)
    @validate_response(Page[BlockOut])
    async def list_blocks(query_args: PageQuery) -> Page[BlockOut]:
        """Client addresses blocked now."""
        return await read_page(
            services().db,
            signal_store.list_blocks,
            query_args,
            Page[BlockOut],
            BlockOut.from_row,
            lambda r: (r.until_us, r.ip),
        )

    @bp.delete("/blocks/<ip>")
    @require_scope("admin")
    @responds(204, "The block is lifted.")
    async def lift_block(ip: str) -> Response:
        """Lift a block: 204, or 404 when that address is not blocked. An IPv6 address
        lifts the block of its prefix."""
        return await _lift(ip)

    @bp.delete("/blocks/<ip>/<prefix>")
    @require_scope("admin")
    @responds(204, "The block is lifted.")
    async def lift_prefix_block(ip: str, prefix: str) -> Response:
        """Lift the block of an IPv6 prefix as the blocks list names it
        (`2001:db8:1:2::/64`): 204, or 404 when it is not blocked."""
        return await _lift(f"{ip}/{prefix}")

    async def _lift(name: str) -> Response:
        svc = services()
        address = block_key(name, svc.settings.ipv6_prefix)
        if address is None:
            raise NotFound()
        if not await svc.abuse.lift(address, actor=current_principal().sub, ip=request.remote_addr):
            raise NotFound()
        return no_content()

    return bp
