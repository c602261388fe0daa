from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.revoke_form_token_type_hint_type_0 import RevokeFormTokenTypeHintType0
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="RevokeForm")



@_attrs_define
class RevokeForm:
    """ RFC 7009 revocation request (application/x-www-form-urlencoded).

        Attributes:
            token (str):
            token_type_hint (None | RevokeFormTokenTypeHintType0 | Unset):
     """

    token: str
    token_type_hint: None | RevokeFormTokenTypeHintType0 | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        token = self.token

        token_type_hint: None | str | Unset
        if isinstance(self.token_type_hint, Unset):
            token_type_hint = UNSET
        elif isinstance(self.token_type_hint, RevokeFormTokenTypeHintType0):
            token_type_hint = self.token_type_hint.value
        else:
            token_type_hint = self.token_type_hint


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "token": token,
        })
        if token_type_hint is not UNSET:
            field_dict["token_type_hint"] = token_type_hint

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        token = d.pop("token")

        def _parse_token_type_hint(data: object) -> None | RevokeFormTokenTypeHintType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                token_type_hint_type_0 = RevokeFormTokenTypeHintType0(data)



                return token_type_hint_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RevokeFormTokenTypeHintType0 | Unset, data)

        token_type_hint = _parse_token_type_hint(d.pop("token_type_hint", UNSET))


        revoke_form = cls(
            token=token,
            token_type_hint=token_type_hint,
        )


        revoke_form.additional_properties = d
        return revoke_form

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
