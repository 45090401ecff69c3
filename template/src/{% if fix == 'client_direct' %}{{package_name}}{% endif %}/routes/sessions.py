"""The sessions API: mint a session's first credentials, and refresh them.

A session id is random, and every credential is signed or minted on the spot (`SessionMinter`);
the shared store holds only which refresh token may be used next, and the rate limits' counts.
So any instance answers any request, and a restarted instance lost nothing.
"""

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from ..sessions.minter import Credentials, Issuer
from .deps import Creator, RefreshClaims, Refresher

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class ConnectOut(BaseModel):
    """Open a WebSocket to `url` with `token` before `expires_at` (Unix seconds)."""

    url: str
    token: str
    expires_at: int
    provider: str


class RefreshOut(BaseModel):
    """Send `token` as `Authorization: Bearer` to POST /api/sessions/{id}/token, once: the answer
    holds the next one. No refresh works after `chain_expires_at`: start a new session."""

    token: str
    expires_at: int
    chain_expires_at: int


class SessionOut(BaseModel):
    session_id: str
    connect: ConnectOut
    refresh: RefreshOut


async def _issue(minter: Issuer, session_id: str, response: Response) -> SessionOut:
    # ProviderUnavailable (502) when the provider cannot mint; then nothing was created or spent.
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
            token=credentials.refresh_token,
            expires_at=credentials.refresh_expires_at,
            chain_expires_at=credentials.chain_expires_at,
        ),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_session(response: Response, minter: Creator) -> SessionOut:
    return await _issue(minter, minter.new_session_id(), response)


@router.post("/{session_id}/token")
async def refresh_token(claims: RefreshClaims, response: Response, minter: Refresher) -> SessionOut:
    """New credentials and the next refresh token; the one sent is spent."""
    return await _issue(minter, claims.session_id, response)
