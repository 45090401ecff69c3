"""The dependencies of the HTTP API. The one route that takes `{session_id}` declares
`RefreshClaims`: the session's refresh token, verified, is what this API knows of it.

Minting (create and refresh) is guarded in this order: the refresh token is verified (no store
needed), the caller must be allowed to mint (auth.py, REQUIRE_IDENTITY,
ALLOW_ANONYMOUS_SESSIONS), then the mint counts against the rate limits every instance shares.
A caller refused earlier counts against no limit, so junk cannot use up anyone's quota.
"""

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from ..auth import Identity, IdentityDep, IdentityRequired
from ..rate_limits import ClientDep, RateLimiterDep, session_creation
from ..sessions.backend import StoreBackend
from ..sessions.minter import SessionMinter
from ..sessions.tokens import Claims
from ..settings import Settings

# 128 random bits as hex, as SessionMinter makes them.
SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"


# `async`, so FastAPI calls these inline instead of handing each to a worker thread.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_minter(request: Request) -> SessionMinter:
    minter: SessionMinter = request.app.state.minter
    return minter


async def get_backend(request: Request) -> StoreBackend:
    backend: StoreBackend = request.app.state.backend
    return backend


SettingsDep = Annotated[Settings, Depends(get_settings)]
MinterDep = Annotated[SessionMinter, Depends(get_minter)]
BackendDep = Annotated[StoreBackend, Depends(get_backend)]


async def verify_refresh_token(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    minter: MinterDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Claims:
    """The session's refresh token, verified: ours, for this API and this session, current."""
    scheme, _, token = (authorization or "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    return minter.verify_refresh(bearer, session_id)


RefreshClaims = Annotated[Claims, Depends(verify_refresh_token)]


async def authorize_minting(identity: IdentityDep, settings: SettingsDep) -> Identity | None:
    """The caller, if it may mint: one with an identity, or anyone when anonymous sessions are
    allowed (ALLOW_ANONYMOUS_SESSIONS, or development without REQUIRE_IDENTITY)."""
    if identity is None and not settings.anonymous_minting:
        raise IdentityRequired
    return identity


MintingCaller = Annotated[Identity | None, Depends(authorize_minting)]


async def limit_creation(
    caller: MintingCaller, client: ClientDep, limiter: RateLimiterDep, settings: SettingsDep
) -> None:
    """SESSION_CREATE_RATE, MINT_RATE_PER_CLIENT and MINT_RATE_GLOBAL, counted together.

    `caller` is not read: declaring it makes the caller's authorization run first."""
    limits = [session_creation(settings.session_create_rate), *settings.mint_limits]
    await limiter.admit(client, limits)


async def limit_refresh(
    claims: RefreshClaims,
    caller: MintingCaller,
    client: ClientDep,
    limiter: RateLimiterDep,
    settings: SettingsDep,
) -> None:
    """MINT_RATE_PER_CLIENT and MINT_RATE_GLOBAL, for a verified refresh token only."""
    await limiter.admit(client, settings.mint_limits)


# For a route's `dependencies=[...]`: everything a mint must pass before the provider is asked.
CreationAllowed = Depends(limit_creation)
RefreshAllowed = Depends(limit_refresh)
