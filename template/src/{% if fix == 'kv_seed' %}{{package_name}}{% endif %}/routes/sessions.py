"""The sessions API: create, read, send a message, stream events, delete."""

import asyncio
import random

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from .. import assistant
from ..sessions.idempotency import REPLAYED_HEADER, KeptAnswer, replayed
from ..sessions.keyspace import WriteConflict
from ..sessions.models import Session, Turn
from ..sessions.store import SessionBusy, SessionNotFound, Stored
from .deps import SEED_HEADER, CodecDep, HydratedSession, IdempotencyKeyDep, StoreDep

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


@router.post("", status_code=status.HTTP_201_CREATED)
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
    body: MessageIn,
    # Before the session, so a malformed key is refused before the store is touched.
    idempotency_key: IdempotencyKeyDep,
    stored: HydratedSession,
    response: Response,
    store: StoreDep,
    codec: CodecDep,
) -> MessageOut:
    """Store the message and the assistant's reply. A retry with the same Idempotency-Key, on
    any instance, gets the first answer and stores nothing."""
    if idempotency_key is not None:
        kept = await store.kept_answer(stored.session.session_id, idempotency_key)
        if kept is not None:
            return _replay(response, kept, body)
    for attempt in range(MAX_WRITE_ATTEMPTS):
        current = stored.session
        store.limits.check_room(current)
        reply = assistant.reply(current.turns, body.text)
        updated = current.with_exchange(body.text, reply)
        seed = codec.encode(updated) or ""
        answer = MessageOut(
            session_id=updated.session_id, reply=reply, rev=updated.rev, seed=seed or None
        )
        to_keep = KeptAnswer(idempotency_key, body, answer) if idempotency_key else None
        events: list[dict[str, object]] = [
            {"type": "turn", "rev": updated.rev, "turn": turn.model_dump(mode="json")}
            for turn in updated.turns[-2:]
        ]
        try:
            kept = await store.write(
                updated, seed, expected_rev=current.rev, events=events, answer=to_keep
            )
        except WriteConflict:
            # Another instance wrote first: back off a little, re-read, and answer on top of it.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
            reloaded = await store.load(current.session_id)
            if reloaded is None:
                raise SessionNotFound(current.session_id) from None
            stored = reloaded
            continue
        if kept is not None and kept != (to_keep.record if to_keep else None):
            # A request with the same key (a retry sent while this one ran) was stored first.
            return _replay(response, kept, body)
        _send_seed(response, seed)
        return answer
    raise SessionBusy


def _replay(response: Response, kept: str, request: MessageIn) -> MessageOut:
    """The first answer to a request with this Idempotency-Key, as it was sent."""
    answer = MessageOut.model_validate(replayed(kept, request))
    response.headers[REPLAYED_HEADER] = "true"
    if answer.seed:
        _send_seed(response, answer.seed)
    return answer


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(stored: HydratedSession, store: StoreDep) -> None:
    await store.delete(stored.session.session_id)
