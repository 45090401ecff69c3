"""The dev upstream: the realtime WebSocket service browsers connect to directly.

It stands in for the provider (OpenAI Realtime, or your own voice or agent service): it checks
the token the API minted, then holds the live conversation. It is the one stateful piece by
design: the live session lives here, as it would at the provider, and never in the API.
Run it with `uvicorn <package>.dev_upstream:app` (the local cluster starts it for you).

Protocol: open `/ws` offering the subprotocols `sessionfix.v1` and `token.<token>` (a browser
cannot set headers on a WebSocket, and a token in the URL would end up in logs). Then, as JSON
text frames:

    upstream -> {"type": "session", "session_id": ..., "turns": [{"role", "text"}, ...]}
    browser  -> {"type": "message", "text": ...}
    upstream -> {"type": "reply", "text": ..., "turn": n}  or  {"type": "error", "code", "detail"}

A token is checked when the connection opens; an open connection outlives it. A refused token
closes the connection with one of these codes, the token error's code as the reason:

    4001 token_expired   ask the API for a fresh token and reconnect
    4002 token_invalid   tampered, truncated, signed with a key we do not have, or missing
    4003 token_foreign   minted for another audience
"""

import json
from collections import OrderedDict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import assistant
from .sessions.tokens import TokenCodec, TokenError, TokenExpired, TokenForeign
from .settings import ConfigError, Settings, load_settings

SUBPROTOCOL = "sessionfix.v1"
CREDENTIAL_PREFIX = "token."
CLOSE_CODES = {TokenExpired: 4001, TokenForeign: 4003}
CLOSE_INVALID = 4002
MAX_TEXT = 4_000
# The oldest conversations are forgotten first; a real provider has its own limits.
MAX_SESSIONS = 10_000


class Conversations:
    """Each session's transcript, so a browser that reconnects picks up where it was."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self._limit = limit
        self._turns: OrderedDict[str, list[assistant.Turn]] = OrderedDict()

    def turns(self, session_id: str) -> list[assistant.Turn]:
        turns = self._turns.setdefault(session_id, [])
        self._turns.move_to_end(session_id)
        while len(self._turns) > self._limit:
            self._turns.popitem(last=False)
        return turns


def offered_token(websocket: WebSocket) -> str:
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(CREDENTIAL_PREFIX):
            return str(protocol[len(CREDENTIAL_PREFIX) :])
    return ""


async def converse(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    codec: TokenCodec = websocket.app.state.codec
    offered = websocket.scope.get("subprotocols", [])
    # Accept first: a close code reaches the browser only on an open connection.
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        claims = codec.verify(offered_token(websocket), settings.upstream_audience)
    except TokenError as error:
        code = CLOSE_CODES.get(type(error), CLOSE_INVALID)
        await websocket.close(code=code, reason=error.code)
        return
    turns = websocket.app.state.conversations.turns(claims.session_id)
    await websocket.send_json(
        {
            "type": "session",
            "session_id": claims.session_id,
            "turns": [{"role": turn.role, "text": turn.text} for turn in turns],
        }
    )
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = message_text(frame.get("text"))
        if text is None:
            await _error(websocket, "message_invalid", 'Send {"type": "message", "text": "..."}.')
        elif len(text) > MAX_TEXT:
            await _error(websocket, "message_too_long", f"At most {MAX_TEXT} characters.")
        else:
            reply = assistant.reply(turns, text)
            turns += [assistant.Turn("user", text), assistant.Turn("assistant", reply)]
            await websocket.send_json({"type": "reply", "text": reply, "turn": len(turns) // 2})


def message_text(frame: str | None) -> str | None:
    """The text of a well-formed message frame, else None."""
    try:
        message: Any = json.loads(frame or "")
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    text = message.get("text")
    return text if isinstance(text, str) and text.strip() else None


async def _error(websocket: WebSocket, code: str, detail: str) -> None:
    await websocket.send_json({"type": "error", "code": code, "detail": detail})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"instance": request.app.state.settings.instance_name, "role": "upstream"})


def create_upstream(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    if not settings.session_keys:
        raise ConfigError("no signing key configured: set SESSION_KEYS to the API's keys")
    app = Starlette(routes=[WebSocketRoute("/ws", converse), Route("/healthz", healthz)])
    app.state.settings = settings
    app.state.codec = TokenCodec(settings.key_bytes)
    app.state.conversations = Conversations()
    return app


try:
    app = create_upstream()
except ConfigError as error:
    raise SystemExit(f"error: {error}") from None
