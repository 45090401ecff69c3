"""Seed 001 fixed: sessions live in Redis; a missing session is a 404, never made up."""

import json
import os
import secrets
from typing import Annotated, Any

import redis.asyncio as redis
from fastapi import Depends, FastAPI, HTTPException, Request

app = FastAPI()
SESSION_TTL_SECONDS = 3600


async def get_redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


@app.on_event("startup")
async def connect() -> None:
    app.state.redis = redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


RedisDep = Annotated[redis.Redis, Depends(get_redis)]


@app.post("/start")
async def start(request: Request, store: RedisDep) -> dict[str, str]:
    session_id = secrets.token_urlsafe(16)
    body = json.dumps({"body": await request.json()})
    await store.set(f"session:{session_id}", body, ex=SESSION_TTL_SECONDS)
    return {"sessionId": session_id}


@app.post("/sessions/{session_id}/api/offer")
async def offer(session_id: str, store: RedisDep) -> dict[str, Any]:
    raw = await store.get(f"session:{session_id}")
    if raw is None:
        raise HTTPException(404, "Session not found: create it with POST /start")
    session: dict[str, Any] = json.loads(raw)
    return session
