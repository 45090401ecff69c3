"""A FastAPI app whose per-process objects are all shared clients or immutable configuration."""

import secrets
from typing import Annotated

import httpx
import redis.asyncio as redis
from fastapi import Depends, FastAPI, HTTPException

from .config import DEFAULT_HEADERS, ERROR_CODES, HANDLERS, ROLES, get_settings, template

app = FastAPI()
_http_client: httpx.AsyncClient | None = None
_redis_client: redis.Redis | None = None


def http_client() -> httpx.AsyncClient:
    # One connection pool per process is what a pool is for.
    global _http_client
    if _http_client is None:
        _http_client = httpx.AsyncClient(timeout=10)
    return _http_client


def get_redis() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.from_url(get_settings().redis_url)
    return _redis_client


RedisDep = Annotated[redis.Redis, Depends(get_redis)]


@app.post("/api/sessions", status_code=201)
async def create_session(store: RedisDep) -> dict[str, str]:
    session_id = secrets.token_hex(16)
    await store.hset(f"session:{session_id}", mapping={"rev": 1})
    return {"session_id": session_id, "prompt": template("default")}


@app.get("/api/sessions/{session_id}")
async def read_session(session_id: str, store: RedisDep) -> dict[str, object]:
    session = await store.hgetall(f"session:{session_id}")
    if not session:
        raise HTTPException(ERROR_CODES["session_not_found"], headers=DEFAULT_HEADERS)
    return {"session_id": session_id, "roles": ROLES, "handlers": sorted(HANDLERS)}


@app.get("/api/forecast")
async def forecast() -> dict[str, object]:
    response = await http_client().get("https://example.com/forecast")
    by_hour: dict[str, float] = {}
    for row in response.json():
        by_hour[row["hour"]] = row["value"]
    return by_hour
