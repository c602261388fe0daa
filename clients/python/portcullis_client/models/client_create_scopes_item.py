from enum import StrEnum

class ClientCreateScopesItem(StrEnum):
    ADMIN = "admin"
    NOTESREAD = "notes:read"
    NOTESWRITE = "notes:write"

    def __str__(self) -> str:
        return str(self.value)
