"""SessionMinter: a session's credentials, minted on the spot.

Each call signs or asks the provider for fresh credentials, so every instance can answer every
request, and a restarted instance has lost nothing. The one thing kept is in the shared store:
which of a session's refresh tokens may be used next (refresh_chains.py), so a refresh token
works once, on any instance.
"""

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from ..auth import Identity
from .providers import Connect, Provider
from .refresh_chains import RefreshChains
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
    # What the browser proves it owns the session with, once, to get a fresh `connect`.
    refresh_token: str
    refresh_expires_at: int
    # After it no refresh token of the session works, however recent (REFRESH_CHAIN_MAX_SECONDS).
    chain_expires_at: int


class SessionMinter:
    def __init__(
        self,
        codec: TokenCodec,
        provider: Provider,
        chains: RefreshChains,
        *,
        refresh_ttl_seconds: int,
    ) -> None:
        self.provider = provider
        self._codec = codec
        self._chains = chains
        self._refresh_ttl = refresh_ttl_seconds

    @staticmethod
    def new_session_id() -> str:
        # 128 random bits as hex: unguessable, and safe in URLs and log lines.
        return secrets.token_hex(16)

    async def create(self, session_id: str, caller: Identity | None) -> Credentials:
        """A new session's first credentials, refreshable by `caller` alone when it has an
        identity; ProviderUnavailable if the provider cannot mint."""
        connect = await self.provider.connect(session_id)
        token_id = secrets.token_hex(16)
        await self._chains.start(session_id, token_id, caller)
        chain_expires_at = int(time.time()) + self._chains.max_seconds
        return self._credentials(session_id, connect, token_id, chain_expires_at)

    async def refresh(self, spent: Claims, caller: Identity | None) -> Credentials:
        """New credentials for the session of a verified refresh token, which is spent by it.

        The provider mints first: when it cannot (502), the token is still unspent and the
        client may retry with it.
        """
        connect = await self.provider.connect(spent.session_id)
        token_id = secrets.token_hex(16)
        chain_left = await self._chains.rotate(spent.session_id, spent.token_id, token_id, caller)
        chain_expires_at = int(time.time()) + chain_left
        return self._credentials(spent.session_id, connect, token_id, chain_expires_at)

    def _credentials(
        self, session_id: str, connect: Connect, token_id: str, chain_expires_at: int
    ) -> Credentials:
        # Not cut short at the chain's end: past it the store answers, with its own code
        # (refresh_chain_expired), which tells the client that only a new session will do.
        ttl = self._refresh_ttl
        refresh, claims = self._codec.mint(session_id, REFRESH_AUDIENCE, ttl, token_id)
        return Credentials(session_id, connect, refresh, claims.expires_at, chain_expires_at)

    def verify_refresh(self, token: str, session_id: str) -> Claims:
        """The refresh token's claims if it is ours, for this session, and current; a
        TokenError saying why not ("" is TokenMissing). Whether it is spent is the store's
        to say, when it is used (`refresh`)."""
        if not token:
            raise TokenMissing
        return self._codec.verify(token, REFRESH_AUDIENCE, session_id)


class Issuer(Protocol):
    """Mints a session's credentials for the caller of one request (routes/deps.py makes it,
    once the caller passed every check)."""

    async def issue(self, session_id: str) -> Credentials: ...


@dataclass(frozen=True)
class NewSessionIssuer:
    minter: SessionMinter
    caller: Identity | None

    def new_session_id(self) -> str:
        return self.minter.new_session_id()

    async def issue(self, session_id: str) -> Credentials:
        return await self.minter.create(session_id, self.caller)


@dataclass(frozen=True)
class RefreshIssuer:
    minter: SessionMinter
    # The verified refresh token this request presented; issuing spends it.
    spent: Claims
    caller: Identity | None

    async def issue(self, session_id: str) -> Credentials:
        assert session_id == self.spent.session_id, "a refresh token is for its own session"
        return await self.minter.refresh(self.spent, self.caller)
