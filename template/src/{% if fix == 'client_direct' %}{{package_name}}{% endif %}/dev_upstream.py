"""The dev upstream: a local stand-in for OpenAI Realtime that browsers connect to directly.

It speaks the OpenAI Realtime protocol (GA event names) and is reached the way OpenAI documents
for a browser holding an ephemeral client secret: a WebSocket to `/v1/realtime` offering the
subprotocols `realtime` and `openai-insecure-api-key.<secret>` (a browser cannot set headers on
a WebSocket). A server-side client, such as the official `openai` SDK, may send the secret as
`Authorization: Bearer <secret>` instead. The secret here is the connect token the API minted,
so the demo page runs one code path against this upstream and against OpenAI: only
`connect.url` and `connect.token` differ. Run it with `uvicorn <package>.dev_upstream:app` (the
local cluster starts it for you).

Each connection is one provider session, as at OpenAI: it starts empty, and a browser that
reconnects replays its transcript with `conversation.item.create`. Replies are the demo
assistant's (assistant.py), streamed word by word: text deltas, or with audio output, PCM16
audio deltas and their transcript. Spoken input (PCM16 base64, `input_audio_buffer.append` and
`.commit`) is "transcribed" as `[audio: N bytes]`. `response.cancel` stops a reply mid-stream.

A token is checked when the connection opens; an open connection outlives it. A refused token
gets what OpenAI answers a bad key with, an `error` event, and then a close whose code and
reason say why:

    4001 token_expired   ask the API for a fresh token and reconnect
    4002 token_invalid   missing, tampered, truncated, or signed with a key we do not have
    4003 token_foreign   minted for another audience (a refresh token, another service)
"""

import array
import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import math
import re
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import assistant
from .sessions.tokens import TokenCodec, TokenError, TokenExpired, TokenForeign
from .settings import ConfigError, Settings, load_settings

SUBPROTOCOL = "realtime"
CREDENTIAL_PREFIX = "openai-insecure-api-key."
CLOSE_CODES = {TokenExpired: 4001, TokenForeign: 4003}
CLOSE_INVALID = 4002
MAX_TEXT = 4_000
# One connection's share of memory: about five minutes of speech, and a long conversation.
MAX_AUDIO_BYTES = 15 * 1024 * 1024
MAX_ITEMS = 1_000
ADDS_AN_ITEM = {"conversation.item.create", "input_audio_buffer.commit", "response.create"}
# Between two deltas, as a model streams tokens: long enough that a barge-in can land mid-reply.
WORD_PAUSE_SECONDS = 0.005
SAMPLE_RATE = 24_000  # PCM16 mono, the protocol's default audio format
WORD_AUDIO_SECONDS = 0.02
Event = dict[str, Any]


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def words_of(text: str) -> list[str]:
    """The deltas of one reply: each word with the space after it, so they join back exactly."""
    return re.findall(r"\S+\s*|\s+", text)


def tone(seconds: float, hertz: float = 440.0) -> bytes:
    """Audible, deterministic PCM16 audio to stand in for speech."""
    count = int(SAMPLE_RATE * seconds)
    wave = (int(8_000 * math.sin(2 * math.pi * hertz * n / SAMPLE_RATE)) for n in range(count))
    return array.array("h", wave).tobytes()


WORD_AUDIO = base64.b64encode(tone(WORD_AUDIO_SECONDS)).decode()


def error_event(code: str, message: str, client_event: Event | None = None) -> Event:
    error: Event = {"type": "invalid_request_error", "code": code, "message": message}
    if client_event and "event_id" in client_event:
        error["event_id"] = client_event["event_id"]
    return {"type": "error", "event_id": new_id("event"), "error": error}


class ProviderSession:
    """One realtime session: its conversation, its audio buffer, and the reply in progress."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.id = new_id("sess")
        self.turns: list[assistant.Turn] = []
        self.audio = bytearray()
        self.output = "text"
        self.replying: asyncio.Task[None] | None = None
        self.cancelled = False
        self._sending = asyncio.Lock()  # the reply streams while client events are answered
        self._event_ids = itertools.count(1)

    async def send(self, event: Event) -> None:
        event = {"event_id": f"event_{next(self._event_ids)}", **event}
        async with self._sending:
            await self.websocket.send_text(json.dumps(event))

    async def error(self, code: str, message: str, client_event: Event | None = None) -> None:
        await self.send(error_event(code, message, client_event))

    async def handle(self, event: Event) -> None:
        kind = event.get("type")
        if kind in ADDS_AN_ITEM and len(self.turns) >= MAX_ITEMS:
            message = f"a session holds at most {MAX_ITEMS} items: start a new one"
            await self.error("conversation_too_long", message, event)
        elif kind == "session.update":
            await self.update(event)
        elif kind == "conversation.item.create":
            await self.add_item(event)
        elif kind == "input_audio_buffer.append":
            await self.append_audio(event)
        elif kind == "input_audio_buffer.commit":
            await self.commit(event)
        elif kind == "input_audio_buffer.clear":
            self.audio.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "response.create":
            if self.replying is not None:
                message = "a response is in progress"
                await self.error("conversation_already_has_active_response", message, event)
                return
            self.cancelled = False
            self.replying = asyncio.create_task(self.reply())
        elif kind == "response.cancel":
            if self.replying is None:
                await self.error("response_cancel_not_active", "no response to cancel", event)
            self.cancelled = True
        else:
            await self.error("unknown_event", f"unknown client event {kind!r}", event)

    async def update(self, event: Event) -> None:
        session, keep = event.get("session"), [self.output]
        modalities = session.get("output_modalities", keep) if isinstance(session, dict) else None
        if modalities not in (["text"], ["audio"]):
            message = 'session.output_modalities is ["text"] or ["audio"]'
            await self.error("invalid_value", message, event)
            return
        self.output = modalities[0]
        await self.send({"type": "session.updated", "session": self.description()})

    async def append_audio(self, event: Event) -> None:
        try:
            audio = base64.b64decode(str(event.get("audio", "")), validate=True)
        except binascii.Error:
            await self.error("invalid_audio", "audio is not base64", event)
            return
        if len(self.audio) + len(audio) > MAX_AUDIO_BYTES:
            message = f"the buffer holds at most {MAX_AUDIO_BYTES} bytes: commit or clear it"
            await self.error("input_audio_buffer_too_large", message, event)
            return
        self.audio += audio

    async def add_item(self, event: Event) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            item = {}
        role, content = item.get("role"), item.get("content") or []
        if (
            item.get("type") != "message"
            or role not in ("user", "assistant")
            or not isinstance(content, list)
            or not content
            or not isinstance(content[0], dict)
        ):
            await self.error("invalid_item", "only user and assistant messages are taken", event)
            return
        text = str(content[0].get("text") or content[0].get("transcript") or "")
        if len(text) > MAX_TEXT:
            await self.error("string_above_max_length", f"at most {MAX_TEXT} characters", event)
            return
        self.turns.append(assistant.Turn(role=role, text=text))
        item = {**item, "id": item.get("id") or new_id("item"), "status": "completed"}
        await self.send({"type": "conversation.item.added", "item": item})
        await self.send({"type": "conversation.item.done", "item": item})

    async def commit(self, event: Event) -> None:
        if not self.audio:
            await self.error("input_audio_buffer_commit_empty", "the buffer is empty", event)
            return
        item_id, heard = new_id("item"), f"[audio: {len(self.audio)} bytes]"
        self.audio.clear()
        self.turns.append(assistant.Turn(role="user", text=heard))
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        await self.send({"type": "conversation.item.added", "item": item})
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": heard,
                "usage": {"type": "duration", "seconds": 0},
            }
        )

    async def reply(self) -> None:
        """Stream the assistant's answer to the last user message, word by word."""
        try:
            await self.stream_reply()
        finally:
            self.replying = None

    async def stream_reply(self) -> None:
        users = [n for n, turn in enumerate(self.turns) if turn.role == "user"]
        last = users[-1] if users else len(self.turns)
        heard = self.turns[last].text if users else ""
        answer = assistant.reply(self.turns[:last], heard)
        response_id, item_id = new_id("resp"), new_id("item")
        audio = self.output == "audio"
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        part = {**where, "content_index": 0}
        await self.send({"type": "response.created", "response": self.response(response_id)})
        item: Event = {"id": item_id, "type": "message", "role": "assistant", "content": []}
        added = {**item, "status": "in_progress"}
        await self.send({"type": "response.output_item.added", **where, "item": added})
        said = ""
        for word in words_of(answer):
            await asyncio.sleep(WORD_PAUSE_SECONDS)
            if self.cancelled:
                break
            said += word
            if audio:
                kind = "response.output_audio.delta"
                await self.send({"type": kind, **part, "delta": WORD_AUDIO})
                kind = "response.output_audio_transcript.delta"
                await self.send({"type": kind, **part, "delta": word})
            else:
                await self.send({"type": "response.output_text.delta", **part, "delta": word})
        if audio:
            await self.send({"type": "response.output_audio.done", **part})
            kind = "response.output_audio_transcript.done"
            await self.send({"type": kind, **part, "transcript": said})
            finished = {"type": "output_audio", "transcript": said}
        else:
            await self.send({"type": "response.output_text.done", **part, "text": said})
            finished = {"type": "output_text", "text": said}
        self.turns.append(assistant.Turn(role="assistant", text=said))
        item_status = "incomplete" if self.cancelled else "completed"
        item = {**item, "status": item_status, "content": [finished]}
        await self.send({"type": "response.output_item.done", **where, "item": item})
        status = "cancelled" if self.cancelled else "completed"
        done = self.response(response_id, status=status, output=[item])
        if self.cancelled:
            done["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
        await self.send({"type": "response.done", "response": done})

    def response(
        self, response_id: str, status: str = "in_progress", output: list[Event] | None = None
    ) -> Event:
        return {
            "id": response_id,
            "object": "realtime.response",
            "status": status,
            "output": output or [],
            "output_modalities": [self.output],
        }

    def description(self) -> Event:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "output_modalities": [self.output],
        }


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
    session = ProviderSession(websocket)
    await session.send({"type": "session.created", "session": session.description()})
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                event = json.loads(message.get("text") or "")
            except ValueError:
                event = None
            if not isinstance(event, dict):
                await session.error("invalid_event", "a client event is one JSON object")
                continue
            await session.handle(event)
    except WebSocketDisconnect:
        pass
    finally:
        if session.replying is not None:
            session.replying.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await session.replying


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
