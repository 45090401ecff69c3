"""A local stand-in for the OpenAI Realtime API: `uvicorn <package>.dev_upstream:app`.

Deterministic and offline, and it speaks the same protocol (GA event names), so the owners talk
to it exactly as to OpenAI and going live is configuration (UPSTREAM_URL, OPENAI_API_KEY). It
serves `/v1/realtime` and takes any API key sent as OpenAI expects it, `Authorization: Bearer
…`; it is for development only and refuses to start in production.

Each WebSocket is one provider session (`dev_realtime.py`, shared with the client-direct fix):
the owner configures it and replays the transcript, then streams the demo assistant's replies.
A malformed event gets an `error` event, and one connection's memory is capped.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .config import AppSettings, ConfigError, read_settings
from .dev_realtime import ProviderSession, converse

# The owner replays its transcript here, and a reply quotes the message it answers (up to 4,000
# characters, routes/sessions.py), so an assistant item may be a little longer than that.
MAX_REPLAYED_TEXT = 8_000


def offered_key(websocket: WebSocket) -> str:
    scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


async def realtime(websocket: WebSocket) -> None:
    if not offered_key(websocket):
        # As OpenAI does: no API key, no session. Any key will do here.
        refusal = JSONResponse(
            {"error": {"code": "missing_api_key", "message": "send Authorization: Bearer <key>"}},
            status_code=401,
        )
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(refusal)
        else:
            await websocket.close(1008, "missing_api_key")
        return
    await websocket.accept()
    await converse(ProviderSession(websocket, max_text=MAX_REPLAYED_TEXT))


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"upstream": "ok"})


def create_upstream(settings: AppSettings | None = None) -> Starlette:
    settings = settings or read_settings(AppSettings)
    if settings.app_env == "production":
        raise ConfigError(
            "the development upstream is for development only: in production, point "
            "UPSTREAM_URL at the provider (wss://api.openai.com/v1/realtime)"
        )
    return Starlette(routes=[WebSocketRoute("/v1/realtime", realtime), Route("/healthz", healthz)])


try:
    app = create_upstream()
except ConfigError as error:
    raise SystemExit(f"error: {error}") from None
