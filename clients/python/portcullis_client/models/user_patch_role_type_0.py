from enum import StrEnum

class UserPatchRoleType0(StrEnum):
    ADMIN = "admin"
    USER = "user"

    def __str__(self) -> str:
        return str(self.value)
