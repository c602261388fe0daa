from enum import StrEnum

class TokenOutTokenType(StrEnum):
    BEARER = "Bearer"
    DPOP = "DPoP"

    def __str__(self) -> str:
        return str(self.value)
