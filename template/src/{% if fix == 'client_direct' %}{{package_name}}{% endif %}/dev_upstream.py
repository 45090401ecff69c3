"""The dev upstream: a local stand-in for OpenAI Realtime that browsers connect to directly.

It speaks the OpenAI Realtime protocol (GA event names) and is reached the way OpenAI documents
for a browser holding an ephemeral client secret: a WebSocket to `/v1/realtime` offering the
subprotocols `realtime` and `openai-insecure-api-key.<secret>` (a browser cannot set headers on
a WebSocket). A server-side client, such as the official `openai` SDK, may send the secret as
`Authorization: Bearer <secret>` instead. The secret here is the connect token the API minted,
so the demo page runs one code path against this upstream and against OpenAI: only
`connect.url` and `connect.token` differ. Run it with `uvicorn <package>.dev_upstream:app` (the
local cluster starts it for you).

Each connection is one provider session, as at OpenAI (`dev_realtime.py`, shared with the
stateful fix): it starts empty, and a browser that reconnects replays its transcript with
`conversation.item.create`.

A token is checked when the connection opens; an open connection outlives it. A refused token
gets what OpenAI answers a bad key with, an `error` event, and then a close whose code and
reason say why:

    4001 token_expired   ask the API for a fresh token and reconnect
    4002 token_invalid   missing, tampered, truncated, or signed with a key we do not have
    4003 token_foreign   minted for another audience (a refresh token, another service)
"""

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .dev_realtime import ProviderSession, converse, error_event
from .sessions.tokens import TokenCodec, TokenError, TokenExpired, TokenForeign
from .settings import ConfigError, Settings, load_settings

SUBPROTOCOL = "realtime"
CREDENTIAL_PREFIX = "openai-insecure-api-key."
CLOSE_CODES = {TokenExpired: 4001, TokenForeign: 4003}
CLOSE_INVALID = 4002


def offered_token(websocket: WebSocket) -> str:
    """The secret as a browser offers it (a subprotocol), or as a server sends it (a header)."""
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(CREDENTIAL_PREFIX):
            return str(protocol[len(CREDENTIAL_PREFIX) :])
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def realtime(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    codec: TokenCodec = websocket.app.state.codec
    offered = websocket.scope.get("subprotocols", [])
    # Accept first, as OpenAI does: a browser sees neither a refused handshake's status nor its
    # body, but it does see an error event and a close code on an open connection.
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        codec.verify(offered_token(websocket), settings.upstream_audience)
    except TokenError as error:
        await websocket.send_text(json.dumps(error_event(error.code, str(error))))
        await websocket.close(code=CLOSE_CODES.get(type(error), CLOSE_INVALID), reason=error.code)
        return
    await converse(ProviderSession(websocket))


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"instance": request.app.state.settings.instance_name, "role": "upstream"})


def create_upstream(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    if not settings.session_keys:
        raise ConfigError("no signing key configured: set SESSION_KEYS to the API's keys")
    routes = [WebSocketRoute("/v1/realtime", realtime), Route("/healthz", healthz)]
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.codec = TokenCodec(settings.key_bytes)
    return app


try:
    app = create_upstream()
except ConfigError as error:
    raise SystemExit(f"error: {error}") from None
