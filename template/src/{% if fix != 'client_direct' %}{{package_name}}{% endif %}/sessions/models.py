"""A session is data: a revision counter and a transcript. Nothing here is a live connection."""

import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "assistant"]
# 128 random bits as hex: unguessable, and safe in URLs, keys and log lines.
SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"


class Turn(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    text: str
    at: datetime


class Session(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    # Bumped by every write; concurrent writers compare-and-set on it, and nothing else.
    rev: int = Field(ge=1)
    turns: tuple[Turn, ...] = ()

    @classmethod
    def new(cls) -> "Session":
        return cls(session_id=secrets.token_hex(16), rev=1)

    def with_exchange(self, text: str, reply: str) -> "Session":
        now = datetime.now(UTC)
        # Milliseconds, as compact JSON carries them: a session read back equals the original.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        added = (Turn(role="user", text=text, at=now), Turn(role="assistant", text=reply, at=now))
        return self.model_copy(update={"rev": self.rev + 1, "turns": self.turns + added})
