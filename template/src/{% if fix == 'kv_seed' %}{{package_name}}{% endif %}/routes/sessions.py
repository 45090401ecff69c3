"""The sessions API: create, read, send a message, stream events, delete."""

import asyncio
import contextlib
import random
import secrets
import time
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..assistant import Assistant, UpstreamUnavailable
from ..rate_limits import SessionCreationLimit
from ..sessions.backend import StoreUnavailable
from ..sessions.idempotency import REPLAYED_HEADER, KeptAnswer, asked_rev, replayed
from ..sessions.keyspace import WriteConflict
from ..sessions.models import Session, Turn
from ..sessions.seed import SeedCodec
from ..sessions.store import (
    STREAMING,
    ReplyLost,
    ReplyStreaming,
    SessionBusy,
    SessionNotFound,
    SessionStore,
    Stored,
)
from ..settings import Settings
from .deps import (
    SEED_HEADER,
    AssistantDep,
    CodecDep,
    HydratedSession,
    IdempotencyKeyDep,
    SettingsDep,
    StoreDep,
)

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

# Concurrent messages to one session are retried on a fresh read, so none is lost.
MAX_WRITE_ATTEMPTS = 50


class SessionOut(BaseModel):
    session_id: str
    rev: int
    turns: tuple[Turn, ...]
    # None when the snapshot outgrew the seed size cap; the store still holds the session.
    seed: str | None
    # When the last turn is a message without its reply: `streaming` while an instance answers
    # it, `interrupted` once that instance failed or died (its reply lease lapsed).
    reply_status: Literal["streaming", "interrupted"] | None = None


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
async def read_session(stored: HydratedSession, response: Response, store: StoreDep) -> SessionOut:
    out = _session_out(response, stored)
    turns = stored.session.turns
    if turns and turns[-1].role == "user":
        streaming = await store.reply_streaming(stored.session.session_id)
        out.reply_status = "streaming" if streaming else "interrupted"
    return out


@router.post("/{session_id}/messages")
async def send_message(
    body: MessageIn,
    # Before the session, so a malformed key is refused before the store is touched.
    idempotency_key: IdempotencyKeyDep,
    stored: HydratedSession,
    response: Response,
    store: StoreDep,
    codec: CodecDep,
    assistant: AssistantDep,
    settings: SettingsDep,
) -> MessageOut:
    """Store the message, stream the assistant's reply as `delta` events, then store the reply.
    A retry with the same Idempotency-Key, on any instance, gets the first answer and stores
    nothing."""
    exchange = Exchange(body, idempotency_key, store, codec, assistant, settings)
    session_id = stored.session.session_id
    if idempotency_key is not None:
        kept = await store.kept_answer(session_id, idempotency_key)
        if kept is not None:
            return await exchange.replay(response, session_id, kept)
    asked = await exchange.store_message(stored)
    if isinstance(asked, str):
        # A request with the same key (a retry sent while this one ran) was stored first.
        return await exchange.replay(response, session_id, asked)
    return await exchange.answer(response, asked)


class Exchange:
    """One message and its streamed reply. One reply streams per session at a time, so turns
    stay in order: the instance answering holds the reply's lease (sessions/store.py)."""

    def __init__(
        self,
        message: MessageIn,
        idempotency_key: str | None,
        store: SessionStore,
        codec: SeedCodec,
        assistant: Assistant,
        settings: Settings,
    ) -> None:
        self.message, self.idempotency_key = message, idempotency_key
        self.store, self.codec, self.assistant = store, codec, assistant
        self.lease_token = secrets.token_hex(16)
        self.lease_ms = int(settings.reply_lease_seconds * 1000)
        # Waiting for another reply to this session, or for our own key's, ends after this.
        wait = settings.assistant_timeout_seconds + settings.reply_lease_seconds
        self.deadline = time.monotonic() + wait

    async def store_message(self, stored: Stored) -> Session | str:
        """The user's message, durable before the provider is asked; or the record kept under
        the request's Idempotency-Key by an earlier request."""
        conflicts = 0
        while True:
            current = stored.session
            self.store.limits.check_room(current)
            asked = current.with_turn("user", self.message.text)
            pending = None
            if self.idempotency_key is not None:
                pending = KeptAnswer(self.idempotency_key, self.message, None, asked_rev=asked.rev)
            try:
                kept = await self.store.ask(
                    asked,
                    self.codec.encode(asked) or "",
                    expected_rev=current.rev,
                    lease_token=self.lease_token,
                    lease_ms=self.lease_ms,
                    pending=pending,
                )
            except WriteConflict:
                # Another instance wrote first: back off a little, re-read, go on top of it.
                conflicts += 1
                if conflicts >= MAX_WRITE_ATTEMPTS:
                    raise SessionBusy from None
                await asyncio.sleep(random.uniform(0, 0.002 * conflicts))  # noqa: S311 - jitter
                kept = ""
            if kept is None:
                return asked
            if kept == STREAMING:
                # Another message's reply is under way: wait for it.
                if time.monotonic() > self.deadline:
                    raise ReplyStreaming
                await asyncio.sleep(random.uniform(0.005, 0.02))  # noqa: S311 - jitter
            elif kept:
                return kept
            reloaded = await self.store.load(current.session_id)
            if reloaded is None:
                raise SessionNotFound(current.session_id)
            stored = reloaded

    async def answer(self, response: Response, asked: Session) -> MessageOut:
        """Stream the reply to `asked`'s last message (our lease held), then store it."""
        text = await self._stream_reply(asked)
        answered = asked.with_turn("assistant", text)
        seed = self.codec.encode(answered) or ""
        answer = MessageOut(
            session_id=asked.session_id, reply=text, rev=answered.rev, seed=seed or None
        )
        to_keep = None
        if self.idempotency_key is not None:
            to_keep = KeptAnswer(self.idempotency_key, self.message, answer)
        try:
            await self.store.answer(
                answered, seed, expected_rev=asked.rev, lease_token=self.lease_token, answer=to_keep
            )
        except (ReplyLost, WriteConflict):
            await self.store.abandon(asked.session_id, self.lease_token)
            raise UpstreamUnavailable(STALLED) from None
        except Exception:
            # SessionFull (the reply outgrew MAX_SESSION_BYTES) or a store failure: the reply is
            # not stored, so it is interrupted now rather than once its lease lapses.
            with contextlib.suppress(Exception):
                await self.store.abandon(asked.session_id, self.lease_token)
            raise
        _send_seed(response, seed)
        return answer

    async def _stream_reply(self, asked: Session) -> str:
        """The reply, each delta announced on the session's events as it comes; on failure
        the reply is announced as interrupted and nothing of it is stored."""
        session_id, rev = asked.session_id, asked.rev + 1
        # Renews the lease while the provider thinks; each delta renews it too.
        renewing = asyncio.create_task(self._renew(session_id))
        parts: list[str] = []
        try:
            async for delta in self.assistant.reply(asked.turns[:-1], asked.turns[-1].text):
                parts.append(delta)
                event: dict[str, object] = {"type": "delta", "rev": rev, "text": delta}
                await self.store.stream_delta(session_id, self.lease_token, self.lease_ms, event)
        except ReplyLost:
            raise UpstreamUnavailable(STALLED) from None
        except BaseException:
            renewing.cancel()
            await asyncio.shield(self.store.abandon(session_id, self.lease_token))
            raise
        finally:
            renewing.cancel()
        return "".join(parts)

    async def _renew(self, session_id: str) -> None:
        with contextlib.suppress(ReplyLost, StoreUnavailable):
            while True:
                await asyncio.sleep(self.lease_ms / 3_000)
                await self.store.stream_delta(session_id, self.lease_token, self.lease_ms, None)

    async def replay(self, response: Response, session_id: str, kept: str) -> MessageOut:
        """The first answer to a request with this Idempotency-Key, as it was sent. If its reply
        is still streaming, the answer once stored; if its instance died before answering (the
        lease lapsed), this request answers the stored message, unless the session moved on."""
        assert self.idempotency_key is not None, "only a request with a key has a kept record"
        while (first := replayed(kept, self.message)) is None:
            rev = asked_rev(kept)
            taken = await self.store.resume(session_id, rev, self.lease_token, self.lease_ms)
            if taken == 1:
                stored = await self.store.load(session_id)
                if stored is None:
                    raise SessionNotFound(session_id)
                return await self.answer(response, stored.session)
            kept = await self.store.kept_answer(session_id, self.idempotency_key) or kept
            if taken == 0 and replayed(kept, self.message) is None:
                raise UpstreamUnavailable(
                    "the first request with this Idempotency-Key was interrupted: its message "
                    "is stored without a reply"
                )
            if time.monotonic() > self.deadline:
                raise ReplyStreaming
            if taken != 0:
                await asyncio.sleep(0.02)
        answer = MessageOut.model_validate(first)
        response.headers[REPLAYED_HEADER] = "true"
        if answer.seed:
            _send_seed(response, answer.seed)
        return answer


# A reply whose instance stalled past its lease is interrupted for everyone; it never writes it.
STALLED = "this instance stalled past its reply lease; the reply is interrupted"


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(stored: HydratedSession, store: StoreDep) -> None:
    await store.delete(stored.session.session_id)
