"""The broken baseline of the stateful fix: one process, live connections in a module-level dict.

It speaks the generated realtime service's protocol (the same socket path, frames, deltas and
turn events) and the OpenAI Realtime protocol to the same development upstream, but keeps each
session's upstream connection in a dict and writes nothing anywhere: what a single-instance app
does before it meets a second instance. Served by `uvicorn stateful_inmemory:app` with
UPSTREAM_URL set.

With BASELINE_REDIS_URL set it is the fair baseline instead: the same app, which also writes
each finished exchange's transcript to that Redis once (one SET of the session's JSON) before it
sends the assistant turn, as the least a durable single-process app does.
"""

import os
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect

UPSTREAM_URL = os.environ["UPSTREAM_URL"]
SESSIONS: dict[str, ClientConnection] = {}  # the bug, on purpose
REDIS_URL = os.environ.get("BASELINE_REDIS_URL")
STORE = aioredis.from_url(REDIS_URL) if REDIS_URL else None


async def session_socket(websocket: WebSocket) -> None:
    session_id = websocket.path_params["session_id"]
    await websocket.accept()
    upstream = SESSIONS.get(session_id)
    if upstream is None:
        headers = {"Authorization": "Bearer development"}
        upstream = SESSIONS[session_id] = await connect(UPSTREAM_URL, additional_headers=headers)
    rev = 1
    transcript: list[dict[str, str]] = []
    try:
        while True:
            text = orjson.loads(await websocket.receive_text())["text"]
            said_by_user = [{"type": "input_text", "text": text}]
            item = {"type": "message", "role": "user", "content": said_by_user}
            create = {"type": "conversation.item.create", "item": item}
            await upstream.send(orjson.dumps(create).decode())
            await upstream.send(orjson.dumps({"type": "response.create"}).decode())
            said = ""
            while True:
                event = orjson.loads(await upstream.recv())
                if event["type"] == "response.output_text.delta":
                    said += event["delta"]
                    delta = {"type": "delta", "text": event["delta"], "request_id": ""}
                    await websocket.send_text(orjson.dumps(delta).decode())
                elif event["type"] == "response.done":
                    break
            rev += 1
            at = datetime.now(UTC).isoformat()
            turns = [
                {"role": role, "text": words, "at": at}
                for role, words in (("user", text), ("assistant", said))
            ]
            transcript += turns
            if STORE is not None:
                await STORE.set(f"bench-baseline:{session_id}", orjson.dumps(transcript), ex=600)
            for turn in turns:
                event = {"type": "turn", "rev": rev, "turn": turn, "request_id": ""}
                await websocket.send_text(orjson.dumps(event).decode())
    except WebSocketDisconnect:
        return


app = Starlette(routes=[WebSocketRoute("/ws/sessions/{session_id}", session_socket)])
