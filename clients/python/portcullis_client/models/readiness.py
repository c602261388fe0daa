from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.readiness_status import ReadinessStatus
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.readiness_checks import ReadinessChecks
  from ..models.readiness_issuers_type_0 import ReadinessIssuersType0





T = TypeVar("T", bound="Readiness")



@_attrs_define
class Readiness:
    """ `ready`; `degraded` (Redis down: limits per process; or an external issuer's keys
    could not be fetched: cached keys still work), still 200; `unavailable` (503: the
    database is down or behind its migrations, or the process is draining).

        Attributes:
            checks (ReadinessChecks): `database` and `redis`: `ok` or the failure; `server: draining` on SIGTERM.
            status (ReadinessStatus):
            issuers (None | ReadinessIssuersType0 | Unset): Each external issuer's key state, when any is configured.
     """

    checks: ReadinessChecks
    status: ReadinessStatus
    issuers: None | ReadinessIssuersType0 | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.readiness_checks import ReadinessChecks # noqa: PLC0415
        from ..models.readiness_issuers_type_0 import ReadinessIssuersType0 # noqa: PLC0415
        checks = self.checks.to_dict()

        status = self.status.value

        issuers: dict[str, Any] | None | Unset
        if isinstance(self.issuers, Unset):
            issuers = UNSET
        elif isinstance(self.issuers, ReadinessIssuersType0):
            issuers = self.issuers.to_dict()
        else:
            issuers = self.issuers


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "checks": checks,
            "status": status,
        })
        if issuers is not UNSET:
            field_dict["issuers"] = issuers

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.readiness_checks import ReadinessChecks # noqa: PLC0415
        from ..models.readiness_issuers_type_0 import ReadinessIssuersType0 # noqa: PLC0415
        d = dict(src_dict)
        checks = ReadinessChecks.from_dict(d.pop("checks"))




        status = ReadinessStatus(d.pop("status"))




        def _parse_issuers(data: object) -> None | ReadinessIssuersType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                issuers_type_0 = ReadinessIssuersType0.from_dict(data)



                return issuers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ReadinessIssuersType0 | Unset, data)

        issuers = _parse_issuers(d.pop("issuers", UNSET))


        readiness = cls(
            checks=checks,
            status=status,
            issuers=issuers,
        )

        return readiness

