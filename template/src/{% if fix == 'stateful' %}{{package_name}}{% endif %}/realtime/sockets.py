"""The browser's WebSocket to the session's owner: `/ws/sessions/{session_id}?token=...`."""

import base64
import contextlib
import re

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from ..sessions.backend import StoreUnavailable
from ..sessions.models import SESSION_ID_PATTERN
from ..sessions.registry import OwnerLost
from ..sessions.store import SessionDeleted
from ..settings import Settings
from .live import CloseCode, Input, LiveRegistry, SessionGone, UpstreamUnavailable
from .owner import Owner

router = APIRouter()


@router.websocket("/ws/sessions/{session_id}")
async def session_socket(websocket: WebSocket, session_id: str, token: str = "") -> None:
    # Accept first: a refusal before the handshake reaches browsers as a bare 403, with no
    # close code to act on.
    await websocket.accept()
    owner: Owner = websocket.app.state.owner
    settings: Settings = websocket.app.state.settings
    live = owner.live
    try:
        code, reason = (
            (CloseCode.SESSION_NOT_FOUND, "session_not_found")
            if not _is_session_id(session_id)
            else await owner.admit(session_id, token)
        )
        if code:
            await websocket.close(code, reason)
            return
        session = (await live.open(session_id)).session
    except StoreUnavailable:
        # Nothing is known or changed: the client may try again shortly.
        await websocket.close(CloseCode.STORE_UNAVAILABLE, "store_unavailable")
        return
    except (SessionGone, SessionDeleted):
        await websocket.close(CloseCode.SESSION_NOT_FOUND, "session_not_found")
        return
    except OwnerLost:
        # Re-homed between the check and the open: the client resumes and finds the new owner.
        await websocket.close(CloseCode.SESSION_OWNER_LOST, "session_owner_lost")
        return
    except UpstreamUnavailable:
        await websocket.close(CloseCode.UPSTREAM_UNAVAILABLE, "upstream_unavailable")
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
    """Relay the browser's inputs until it leaves; turns reach it through its listener."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        error = ""
        if message.get("bytes") is not None:
            audio: bytes = message["bytes"]
            item = Input(kind="audio", audio=base64.b64encode(audio).decode())
            error = "audio_too_large" if len(audio) > max_audio else ""
        else:
            try:
                item = Input.model_validate({**orjson.loads(message["text"]), "kind": "text"})
                error = "" if item.text else "message_invalid"
            except (orjson.JSONDecodeError, ValidationError, TypeError):
                error = "message_invalid"
        if error:
            await websocket.send_text(orjson.dumps({"type": "error", "code": error}).decode())
            continue
        try:
            await live.handle(session_id, item)
        except OwnerLost:
            # Usually closed already, with the new owner's address (4307) when there is one.
            await _close(websocket, CloseCode.SESSION_OWNER_LOST, "session_owner_lost")
            return
        except (SessionGone, SessionDeleted):
            await _close(websocket, CloseCode.SESSION_NOT_FOUND, "session_not_found")
            return
        except UpstreamUnavailable:
            await _close(websocket, CloseCode.UPSTREAM_UNAVAILABLE, "upstream_unavailable")
            return
        except StoreUnavailable:
            # Not recorded, so not acknowledged: the browser may send it again.
            await websocket.send_text(
                orjson.dumps({"type": "error", "code": "store_unavailable"}).decode()
            )


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close the socket unless it is closed already: the first reason given is the one sent."""
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError):  # the browser left at the same moment
            await websocket.close(code, reason)


def _is_session_id(value: str) -> bool:
    return re.fullmatch(SESSION_ID_PATTERN, value) is not None
