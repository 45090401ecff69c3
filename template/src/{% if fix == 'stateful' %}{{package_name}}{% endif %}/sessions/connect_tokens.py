"""ConnectTokens: the tokens that let a browser open its owner's socket.

API instances mint them, realtime instances verify them; both hold the same SESSION_KEYS, so no
call between them is needed. They are TokenCodec tokens for the realtime audience.
"""

from dataclasses import dataclass

from .tokens import TokenCodec

AUDIENCE = "realtime"


@dataclass(frozen=True)
class ConnectToken:
    token: str
    expires_at: int  # Unix time, seconds


class ConnectTokens:
    def __init__(self, codec: TokenCodec, *, ttl_seconds: int) -> None:
        self._codec = codec
        self._ttl = ttl_seconds

    def mint(self, session_id: str) -> ConnectToken:
        token, claims = self._codec.mint(session_id, AUDIENCE, self._ttl)
        return ConnectToken(token=token, expires_at=claims.expires_at)

    def verify(self, token: str, session_id: str) -> None:
        """Raises TokenInvalid, TokenExpired or TokenForeign (see tokens.py)."""
        self._codec.verify(token, AUDIENCE, session_id)
