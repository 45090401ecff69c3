"""A voice-bot runner (seed 001): WebRTC sessions kept in this process, auto-created on a miss."""

import uuid
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from fastapi import FastAPI, HTTPException, Request
from loguru import logger

app = FastAPI()

active_sessions: dict[str, dict[str, Any]] = {}
pcs_map: dict[str, RTCPeerConnection] = {}


@app.post("/start")
async def start(request: Request) -> dict[str, str]:
    session_id = str(uuid.uuid4())
    active_sessions[session_id] = {"body": await request.json()}
    logger.info(f"Created session {session_id}, total active sessions: {len(active_sessions)}")
    return {"sessionId": session_id}


@app.api_route("/sessions/{session_id}/{path:path}", methods=["GET", "POST"])
async def proxy(session_id: str, path: str, request: Request) -> dict[str, Any]:
    active_session = active_sessions.get(session_id)
    # Auto-create session for offer requests if it doesn't exist
    if path.endswith("api/offer") and active_session is None:
        logger.warning(f"Session {session_id} not found, auto-creating for offer request")
        active_sessions[session_id] = {"auto_created": True}
        active_session = active_sessions[session_id]
    if active_session is None:
        raise HTTPException(404, "Session not found")
    if path.endswith("api/offer"):
        return await offer(session_id, await request.json())
    return active_session


async def offer(session_id: str, body: dict[str, str]) -> dict[str, str]:
    pc = RTCPeerConnection()
    pcs_map[session_id] = pc
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
