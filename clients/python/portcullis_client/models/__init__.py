""" Contains all the data models used in inputs/outputs """

from .account_deletion import AccountDeletion
from .audit_event import AuditEvent
from .block_out import BlockOut
from .client_admin import ClientAdmin
from .client_create import ClientCreate
from .client_create_scopes_item import ClientCreateScopesItem
from .client_created import ClientCreated
from .client_patch import ClientPatch
from .client_patch_scopes_type_0_item import ClientPatchScopesType0Item
from .client_public import ClientPublic
from .client_secret import ClientSecret
from .external_public import ExternalPublic
from .external_public_role import ExternalPublicRole
from .get_metadata_response_200 import GetMetadataResponse200
from .health import Health
from .jwk_set import JWKSet
from .note_create import NoteCreate
from .note_public import NotePublic
from .note_update import NoteUpdate
from .o_auth_error_out import OAuthErrorOut
from .page_audit_event import PageAuditEvent
from .page_block_out import PageBlockOut
from .page_client_admin import PageClientAdmin
from .page_note_public import PageNotePublic
from .page_user_public import PageUserPublic
from .password_change import PasswordChange
from .problem import Problem
from .problem_item import ProblemItem
from .public_jwk import PublicJWK
from .readiness import Readiness
from .readiness_checks import ReadinessChecks
from .readiness_issuers_type_0 import ReadinessIssuersType0
from .readiness_status import ReadinessStatus
from .register_in import RegisterIn
from .revoke_form import RevokeForm
from .revoke_form_token_type_hint_type_0 import RevokeFormTokenTypeHintType0
from .revoked import Revoked
from .token_form import TokenForm
from .token_form_grant_type import TokenFormGrantType
from .token_out import TokenOut
from .token_out_token_type import TokenOutTokenType
from .user_patch import UserPatch
from .user_patch_role_type_0 import UserPatchRoleType0
from .user_public import UserPublic
from .user_public_role import UserPublicRole

__all__ = (
    "AccountDeletion",
    "AuditEvent",
    "BlockOut",
    "ClientAdmin",
    "ClientCreate",
    "ClientCreated",
    "ClientCreateScopesItem",
    "ClientPatch",
    "ClientPatchScopesType0Item",
    "ClientPublic",
    "ClientSecret",
    "ExternalPublic",
    "ExternalPublicRole",
    "GetMetadataResponse200",
    "Health",
    "JWKSet",
    "NoteCreate",
    "NotePublic",
    "NoteUpdate",
    "OAuthErrorOut",
    "PageAuditEvent",
    "PageBlockOut",
    "PageClientAdmin",
    "PageNotePublic",
    "PageUserPublic",
    "PasswordChange",
    "Problem",
    "ProblemItem",
    "PublicJWK",
    "Readiness",
    "ReadinessChecks",
    "ReadinessIssuersType0",
    "ReadinessStatus",
    "RegisterIn",
    "Revoked",
    "RevokeForm",
    "RevokeFormTokenTypeHintType0",
    "TokenForm",
    "TokenFormGrantType",
    "TokenOut",
    "TokenOutTokenType",
    "UserPatch",
    "UserPatchRoleType0",
    "UserPublic",
    "UserPublicRole",
)
