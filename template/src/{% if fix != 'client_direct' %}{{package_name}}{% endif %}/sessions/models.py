"""A session is data: a revision counter and a transcript. Nothing here is a live connection."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ClientError

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

    def with_turn(self, role: Role, text: str) -> "Session":
        """One turn more: a message stored before its reply streams, or that reply."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        turn = Turn(role=role, text=text, at=now)
        return self.model_copy(update={"rev": self.rev + 1, "turns": (*self.turns, turn)})


class SessionFull(ClientError):
    """The session reached a configured limit. It stays readable; a new session takes more."""

    code = "session_full"


@dataclass(frozen=True)
class SessionLimits:
    """How far one session may grow (MAX_TURNS_PER_SESSION, MAX_SESSION_BYTES). A transcript is
    read, written and sent whole on every request, so an unbounded one would slow each of them
    and, in the end, fill the store."""

    max_turns: int
    max_bytes: int

    def check_room(self, session: Session) -> None:
        """Before the assistant is asked: refused here, nobody waits for a reply in vain."""
        if len(session.turns) + 2 > self.max_turns:
            raise SessionFull(
                f"Session {session.session_id} holds {len(session.turns)} turns and may hold at "
                f"most {self.max_turns}; start a new session."
            )

    def check_size(self, session_id: str, doc: bytes) -> None:
        """Before a write: the stored document stays within MAX_SESSION_BYTES."""
        if len(doc) > self.max_bytes:
            raise SessionFull(
                f"Session {session_id} would grow to {len(doc)} bytes and may hold at most "
                f"{self.max_bytes} bytes; start a new session."
            )
