"""The bug itself: the generated projects' HTTP contract, with sessions kept in a dict.

One process serves it correctly; `uvicorn --workers 3` serves each request from whichever
worker accepts the connection, and a worker that did not create a session answers 404.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()
sessions: dict[str, list[dict[str, str]]] = {}
WORKER = f"worker-{os.getpid()}"


class MessageIn(BaseModel):
    text: str


@app.middleware("http")
async def name_the_worker(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers["X-Instance"] = WORKER
    return response


def turns_of(session_id: str) -> list[dict[str, str]]:
    if session_id not in sessions:
        raise HTTPException(404, "Session not found")
    return sessions[session_id]


@app.post("/api/sessions", status_code=201)
async def create_session() -> dict[str, str]:
    session_id = secrets.token_hex(16)
    sessions[session_id] = []
    return {"session_id": session_id}


@app.get("/api/sessions/{session_id}")
async def read_session(session_id: str) -> dict[str, object]:
    return {"session_id": session_id, "turns": turns_of(session_id)}


@app.post("/api/sessions/{session_id}/messages")
async def send_message(session_id: str, message: MessageIn) -> dict[str, str]:
    turns = turns_of(session_id)
    turns += [{"role": "user", "text": message.text}, {"role": "assistant", "text": "ok"}]
    return {"reply": "ok"}


@app.get("/api/sessions/{session_id}/events")
async def stream_events(session_id: str) -> StreamingResponse:
    turns_of(session_id)

    async def events() -> AsyncIterator[str]:
        while True:
            yield ": ping\n\n"
            await asyncio.sleep(5)

    return StreamingResponse(events(), media_type="text/event-stream")


@app.delete("/api/sessions/{session_id}", status_code=204)
async def delete_session(session_id: str) -> None:
    turns_of(session_id)
    del sessions[session_id]
