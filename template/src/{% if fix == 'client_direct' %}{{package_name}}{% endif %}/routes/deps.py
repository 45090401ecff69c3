"""The dependencies of the HTTP API. The one route that takes `{session_id}` declares
`RefreshClaims`: the session's refresh token, verified, is what this API knows of it.

The routes mint with the issuer `Creator` or `Refresher` gives them, made only once
every check passed, in this order: the refresh token is verified (no store needed), the caller
must be allowed to mint (auth.py, REQUIRE_IDENTITY, ALLOW_ANONYMOUS_SESSIONS), then the mint
counts against the rate limits every instance shares. A caller refused earlier counts against
no limit, so junk cannot use up anyone's quota.
"""

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from ..auth import Identity, IdentityDep, IdentityRequired
from ..rate_limits import ClientDep, RateLimiterDep, session_creation
from ..sessions.backend import StoreBackend
from ..sessions.minter import NewSessionIssuer, RefreshIssuer, SessionMinter
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


async def new_session_issuer(
    caller: MintingCaller,
    client: ClientDep,
    limiter: RateLimiterDep,
    settings: SettingsDep,
    minter: MinterDep,
) -> NewSessionIssuer:
    """Mints a new session for a caller that may mint, once SESSION_CREATE_RATE,
    MINT_RATE_PER_CLIENT and MINT_RATE_GLOBAL have counted it (together, in one step)."""
    limits = [session_creation(settings.session_create_rate), *settings.mint_limits]
    await limiter.admit(client, limits)
    return NewSessionIssuer(minter, caller)


async def refresh_issuer(
    claims: RefreshClaims,
    caller: MintingCaller,
    client: ClientDep,
    limiter: RateLimiterDep,
    settings: SettingsDep,
    minter: MinterDep,
) -> RefreshIssuer:
    """Mints new credentials for a verified refresh token's session, for a caller that may
    mint, once MINT_RATE_PER_CLIENT and MINT_RATE_GLOBAL have counted it."""
    await limiter.admit(client, settings.mint_limits)
    return RefreshIssuer(minter, claims, caller)


Creator = Annotated[NewSessionIssuer, Depends(new_session_issuer)]
Refresher = Annotated[RefreshIssuer, Depends(refresh_issuer)]
