"""SessionMinter: a session's credentials, minted on the spot and kept nowhere.

Each call signs or asks the provider for fresh credentials, so every instance can answer every
request, and a restarted instance has lost nothing.
"""

import secrets
from dataclasses import dataclass

from .providers import Connect, Provider
from .tokens import REFRESH_AUDIENCE, Claims, TokenCodec, TokenError


class TokenMissing(TokenError):
    code = "token_missing"

    def __init__(self) -> None:
        super().__init__("Send the session's refresh token as `Authorization: Bearer <token>`.")


@dataclass(frozen=True)
class Credentials:
    session_id: str
    # What the browser opens its own connection to the upstream with.
    connect: Connect
    # What the browser proves it owns the session with, to get a fresh `connect`.
    refresh_token: str
    refresh_expires_at: int


class SessionMinter:
    def __init__(self, codec: TokenCodec, provider: Provider, *, refresh_ttl_seconds: int) -> None:
        self.provider = provider
        self._codec = codec
        self._refresh_ttl = refresh_ttl_seconds

    @staticmethod
    def new_session_id() -> str:
        # 128 random bits as hex: unguessable, and safe in URLs and log lines.
        return secrets.token_hex(16)

    async def issue(self, session_id: str) -> Credentials:
        """Credentials for `session_id`; ProviderUnavailable if the provider cannot mint."""
        connect = await self.provider.connect(session_id)
        refresh, claims = self._codec.mint(session_id, REFRESH_AUDIENCE, self._refresh_ttl)
        return Credentials(session_id, connect, refresh, claims.expires_at)

    def verify_refresh(self, token: str, session_id: str) -> Claims:
        """The refresh token's claims if it is ours, for this session, and current; a
        TokenError saying why not ("" is TokenMissing)."""
        if not token:
            raise TokenMissing
        return self._codec.verify(token, REFRESH_AUDIENCE, session_id)
