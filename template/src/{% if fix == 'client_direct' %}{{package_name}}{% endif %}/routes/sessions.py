"""The sessions API: mint a session's first credentials, and refresh them.

Nothing is stored: a session id is random, and every credential is signed or minted on the spot
(`SessionMinter`), so any instance answers any request and a restarted instance lost nothing.
"""

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from ..sessions.minter import Credentials, SessionMinter
from .deps import MinterDep, RefreshClaims

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class ConnectOut(BaseModel):
    """Open a WebSocket to `url` with `token` before `expires_at` (Unix seconds)."""

    url: str
    token: str
    expires_at: int
    provider: str


class RefreshOut(BaseModel):
    """Send `token` as `Authorization: Bearer` to POST /api/sessions/{id}/token."""

    token: str
    expires_at: int


class SessionOut(BaseModel):
    session_id: str
    connect: ConnectOut
    refresh: RefreshOut


async def _issue(minter: SessionMinter, session_id: str, response: Response) -> SessionOut:
    # ProviderUnavailable (502) when the provider cannot mint.
    credentials: Credentials = await minter.issue(session_id)
    # Credentials: no browser or proxy cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    connect = credentials.connect
    return SessionOut(
        session_id=credentials.session_id,
        connect=ConnectOut(
            url=connect.url,
            token=connect.token,
            expires_at=connect.expires_at,
            provider=connect.provider,
        ),
        refresh=RefreshOut(
            token=credentials.refresh_token, expires_at=credentials.refresh_expires_at
        ),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_session(response: Response, minter: MinterDep) -> SessionOut:
    return await _issue(minter, minter.new_session_id(), response)


@router.post("/{session_id}/token")
async def refresh_token(claims: RefreshClaims, response: Response, minter: MinterDep) -> SessionOut:
    """New credentials for a session whose refresh token is still valid."""
    return await _issue(minter, claims.session_id, response)
