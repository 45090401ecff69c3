"""A local stand-in for the upstream realtime model service: `uvicorn <package>.dev_upstream:app`.

Deterministic and offline, so the whole flow runs on a laptop and in tests. Each WebSocket is
one live session, as with a realtime model API: it starts with the transcript so far, then
answers each text input, or audio chunk, with one reply. Point UPSTREAM_URL at a real service
(and adapt realtime/live.py's Upstream to its protocol) to go live.
"""

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import assistant
from .sessions.models import Role, Turn


class Said(BaseModel):
    role: Role
    text: str


class Start(BaseModel):
    type: str
    history: list[Said]


async def realtime(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        start = Start.model_validate_json(await websocket.receive_text())
        now = datetime.now(UTC)
        history = [Turn(role=said.role, text=said.text, at=now) for said in start.history]
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                heard = f"[audio: {len(message['bytes'])} bytes]"
            else:
                heard = str(orjson.loads(message["text"])["text"])
            text = assistant.reply(history, heard)
            now = datetime.now(UTC)
            history += [
                Turn(role="user", text=heard, at=now),
                Turn(role="assistant", text=text, at=now),
            ]
            await websocket.send_text(
                orjson.dumps({"type": "reply", "heard": heard, "text": text}).decode()
            )
    except WebSocketDisconnect:
        return


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"upstream": "ok"})


app = Starlette(routes=[WebSocketRoute("/v1/realtime", realtime), Route("/healthz", healthz)])
