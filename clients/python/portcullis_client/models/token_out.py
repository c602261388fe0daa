from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.token_out_token_type import TokenOutTokenType
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="TokenOut")



@_attrs_define
class TokenOut:
    """ 
        Attributes:
            access_token (str):
            expires_in (int):
            scope (str):
            refresh_token (None | str | Unset):
            token_type (TokenOutTokenType | Unset):  Default: TokenOutTokenType.BEARER.
     """

    access_token: str
    expires_in: int
    scope: str
    refresh_token: None | str | Unset = UNSET
    token_type: TokenOutTokenType | Unset = TokenOutTokenType.BEARER





    def to_dict(self) -> dict[str, Any]:
        access_token = self.access_token

        expires_in = self.expires_in

        scope = self.scope

        refresh_token: None | str | Unset
        if isinstance(self.refresh_token, Unset):
            refresh_token = UNSET
        else:
            refresh_token = self.refresh_token

        token_type: str | Unset = UNSET
        if not isinstance(self.token_type, Unset):
            token_type = self.token_type.value



        field_dict: dict[str, Any] = {}

        field_dict.update({
            "access_token": access_token,
            "expires_in": expires_in,
            "scope": scope,
        })
        if refresh_token is not UNSET:
            field_dict["refresh_token"] = refresh_token
        if token_type is not UNSET:
            field_dict["token_type"] = token_type

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        access_token = d.pop("access_token")

        expires_in = d.pop("expires_in")

        scope = d.pop("scope")

        def _parse_refresh_token(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        refresh_token = _parse_refresh_token(d.pop("refresh_token", UNSET))


        _token_type = d.pop("token_type", UNSET)
        token_type: TokenOutTokenType | Unset
        if isinstance(_token_type,  Unset):
            token_type = UNSET
        else:
            token_type = TokenOutTokenType(_token_type)




        token_out = cls(
            access_token=access_token,
            expires_in=expires_in,
            scope=scope,
            refresh_token=refresh_token,
            token_type=token_type,
        )

        return token_out

