"""Intended per-process state, each silenced by a comment that names its rule."""

import os

from fastapi import FastAPI

app = FastAPI()
app.state.secret_key = os.urandom(32)  # sessionfix: ignore[per-process-secret] (a dev-only demo)

# sessionfix: ignore[process-local-sessions] (one instance by design: a local dev tool)
local_sessions: dict[str, list[str]] = {}


@app.post("/sessions/{session_id}")
def add(session_id: str, text: str) -> list[str]:
    local_sessions.setdefault(session_id, []).append(text)
    return local_sessions[session_id]
