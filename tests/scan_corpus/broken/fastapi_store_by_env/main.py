"""The store is picked by an environment variable; without one, sessions stay in memory."""

import os

from fastapi import FastAPI, HTTPException
from redis import Redis

app = FastAPI()

match os.environ.get("SESSION_STORE", "memory"):
    case "redis":
        redis = Redis.from_url(os.environ["REDIS_URL"])
        memory_sessions = None
    case _:
        redis = None
        memory_sessions: dict[str, str] = {}


@app.put("/sessions/{session_id}")
def save(session_id: str, state: str) -> None:
    if redis is not None:
        redis.set(session_id, state)
    else:
        memory_sessions[session_id] = state


@app.get("/sessions/{session_id}")
def load(session_id: str) -> str:
    state = redis.get(session_id) if redis is not None else memory_sessions.get(session_id)
    if state is None:
        raise HTTPException(404, "Session not found")
    return str(state)
