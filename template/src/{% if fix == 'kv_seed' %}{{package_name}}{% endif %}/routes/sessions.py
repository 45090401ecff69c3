"""The sessions API: create, read, send a message, stream events, delete."""

import asyncio
import random

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from .. import assistant
from ..rate_limits import SessionCreationLimit
from ..sessions.keyspace import WriteConflict
from ..sessions.models import Session, Turn
from ..sessions.store import SessionBusy, SessionNotFound, Stored
from .deps import SEED_HEADER, CodecDep, HydratedSession, StoreDep

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

# Concurrent messages to one session are retried on a fresh read, so none is lost.
MAX_WRITE_ATTEMPTS = 50


class SessionOut(BaseModel):
    session_id: str
    rev: int
    turns: tuple[Turn, ...]
    # None when the snapshot outgrew the seed size cap; the store still holds the session.
    seed: str | None


class MessageIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Hello!"}]})

    text: str = Field(min_length=1, max_length=4_000)


class MessageOut(BaseModel):
    session_id: str
    reply: str
    rev: int
    seed: str | None


def _send_seed(response: Response, seed: str) -> str | None:
    """Hand the seed back in the header and the body; the client sends it with its next call."""
    if not seed:
        return None
    response.headers[SEED_HEADER] = seed
    return seed


def _session_out(response: Response, stored: Stored) -> SessionOut:
    session = stored.session
    return SessionOut(
        session_id=session.session_id,
        rev=session.rev,
        turns=session.turns,
        seed=_send_seed(response, stored.seed),
    )


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[SessionCreationLimit])
async def create_session(response: Response, store: StoreDep, codec: CodecDep) -> SessionOut:
    session = Session.new()
    seed = codec.encode(session) or ""
    await store.write(session, seed, expected_rev=0, events=[])
    response.headers["Location"] = f"{router.prefix}/{session.session_id}"
    return _session_out(response, Stored(session, seed))


@router.get("/{session_id}")
async def read_session(stored: HydratedSession, response: Response) -> SessionOut:
    return _session_out(response, stored)


@router.post("/{session_id}/messages")
async def send_message(
    body: MessageIn, stored: HydratedSession, response: Response, store: StoreDep, codec: CodecDep
) -> MessageOut:
    for attempt in range(MAX_WRITE_ATTEMPTS):
        current = stored.session
        reply = assistant.reply(current.turns, body.text)
        updated = current.with_exchange(body.text, reply)
        seed = codec.encode(updated) or ""
        events: list[dict[str, object]] = [
            {"type": "turn", "rev": updated.rev, "turn": turn.model_dump(mode="json")}
            for turn in updated.turns[-2:]
        ]
        try:
            await store.write(updated, seed, expected_rev=current.rev, events=events)
        except WriteConflict:
            # Another instance wrote first: back off a little, re-read, and answer on top of it.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
            reloaded = await store.load(current.session_id)
            if reloaded is None:
                raise SessionNotFound(current.session_id) from None
            stored = reloaded
            continue
        return MessageOut(
            session_id=updated.session_id,
            reply=reply,
            rev=updated.rev,
            seed=_send_seed(response, seed),
        )
    raise SessionBusy


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(stored: HydratedSession, store: StoreDep) -> None:
    await store.delete(stored.session.session_id)
