"""The browser's WebSocket to the session's owner: `/ws/sessions/{session_id}`, its token
among the subprotocols (`connect.protocols`, see connect_tokens.py)."""

import asyncio
import base64
import contextlib
import re

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..errors import ClientError
from ..problems import PROBLEMS
from ..sessions.backend import StoreUnavailable
from ..sessions.connect_tokens import SOCKET_PROTOCOL, TokenInQuery, presented_token
from ..sessions.models import SESSION_ID_PATTERN, SessionFull
from ..sessions.store import SessionNotFound
from ..settings import Settings
from .live import LiveRegistry
from .owner import Owner
from .upstream import AudioTooLarge, Input, MessageInvalid

router = APIRouter()


@router.websocket("/ws/sessions/{session_id}")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    offered: list[str] = websocket.scope.get("subprotocols", [])
    # Accept first: a refusal before the handshake reaches browsers as a bare 403, with no
    # close code to act on. A browser fails a socket whose server picks none of the
    # subprotocols it offered, so ours is picked; the token is never echoed.
    await websocket.accept(subprotocol=SOCKET_PROTOCOL if SOCKET_PROTOCOL in offered else None)
    owner: Owner = websocket.app.state.owner
    settings: Settings = websocket.app.state.settings
    live = owner.live
    try:
        if "token" in websocket.query_params:
            refused: tuple[int, str] | None = PROBLEMS.closing(TokenInQuery)
        elif not _is_session_id(session_id):
            refused = PROBLEMS.closing(SessionNotFound)
        else:
            refused = await owner.admit(session_id, presented_token(offered))
        if refused:
            await websocket.close(*refused)
            return
        session = (await live.open(session_id)).session
    except ClientError as error:
        # The store is unavailable (nothing is known or changed: try again shortly), the session
        # is unknown, or it was re-homed between the check and the open (resume finds the new
        # owner), or the upstream is unavailable.
        await websocket.close(*PROBLEMS.closing(type(error)))
        return

    async def forward(event: dict[str, object]) -> None:
        if event["type"] == "closed":
            await _close(websocket, int(str(event["code"])), str(event["reason"]))
        else:
            await websocket.send_text(orjson.dumps(event).decode())

    live.listen(session_id, forward)
    try:
        ready = {
            "type": "ready",
            "instance": settings.instance_name,
            "rev": session.rev,
            "turns": [turn.model_dump(mode="json") for turn in session.turns],
        }
        await websocket.send_text(orjson.dumps(ready).decode())
        await _serve(websocket, session_id, live, settings.audio_max_bytes)
    finally:
        live.unlisten(session_id, forward)


async def _serve(websocket: WebSocket, session_id: str, live: LiveRegistry, max_audio: int) -> None:
    """Relay the browser's inputs until it leaves; replies and turns reach it through its
    listener. `{"type": "cancel"}` stops the reply in progress (barge-in)."""
    # One exchange at a time, as before; the socket is read meanwhile, so a cancel can land.
    exchange: asyncio.Task[None] | None = None
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            if exchange is not None:
                await exchange  # recorded all the same, as if the browser had stayed
            return
        refused: type[ClientError] | None = None
        if message.get("bytes") is not None:
            audio: bytes = message["bytes"]
            item = Input(kind="audio", audio=base64.b64encode(audio).decode())
            refused = AudioTooLarge if len(audio) > max_audio else None
        else:
            try:
                frame = orjson.loads(message["text"])
                if isinstance(frame, dict) and frame.get("type") == "cancel":
                    await live.cancel(session_id)
                    continue
                # The text alone: request ids and Idempotency-Keys are the API's to give.
                text = frame.get("text") if isinstance(frame, dict) else None
                item = Input(kind="text", text=text)
                refused = None if item.text else MessageInvalid
            except (orjson.JSONDecodeError, ValidationError):
                refused = MessageInvalid
        if refused:
            await _send_error(websocket, refused)
            continue
        if exchange is not None:
            await exchange
        exchange = asyncio.create_task(_exchange(websocket, session_id, live, item))


async def _exchange(websocket: WebSocket, session_id: str, live: LiveRegistry, item: Input) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the browser left meanwhile
        try:
            await live.handle(session_id, item)
        except StoreUnavailable:
            # Not recorded, so not acknowledged: the browser may send it again.
            await _send_error(websocket, StoreUnavailable)
        except SessionFull:
            # The session stays readable, and the socket open: its transcript is all there.
            await _send_error(websocket, SessionFull)
        except ClientError as error:
            # Owner lost (usually closed already, with the new owner's address, 4307, when
            # there is one), session gone, or upstream unavailable.
            await _close(websocket, *PROBLEMS.closing(type(error)))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close the socket unless it is closed already: the first reason given is the one sent."""
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError):  # the browser left at the same moment
            await websocket.close(code, reason)


async def _send_error(websocket: WebSocket, error: type[ClientError]) -> None:
    """An input refused without closing the socket: the browser may send another."""
    await websocket.send_text(orjson.dumps({"type": "error", "code": error.code}).decode())


def _is_session_id(value: str) -> bool:
    return re.fullmatch(SESSION_ID_PATTERN, value) is not None
