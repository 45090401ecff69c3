"""The dependencies of the HTTP API. The one route that takes `{session_id}` declares
`RefreshClaims`: the session's refresh token, verified, is all this stateless API knows of it."""

from typing import Annotated

from fastapi import Depends, Header, Path, Request

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


MinterDep = Annotated[SessionMinter, Depends(get_minter)]


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


SettingsDep = Annotated[Settings, Depends(get_settings)]
