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
from ..sessions.models import Session, SessionFull, Turn
from ..sessions.seed import SeedCodec
from ..sessions.store import (
    STREAMING,
    HydrateFirst,
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
    ClaimedSession,
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
    # With a seed, not read from the store: storing the message checks it (one round trip).
    stored: ClaimedSession,
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
    # An answer kept under the Idempotency-Key is found by the write itself, which stores
    # nothing then (or by `store_message` when the session has no room left).
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
            asked = current.with_turn("user", self.message.text)
            pending = None
            if self.idempotency_key is not None:
                pending = KeptAnswer(self.idempotency_key, self.message, None, asked_rev=asked.rev)
            try:
                self.store.limits.check_room(current)
                kept = await self.store.ask(
                    asked,
                    self.codec.encode(asked) or "",
                    expected_rev=current.rev,
                    lease_token=self.lease_token,
                    lease_ms=self.lease_ms,
                    pending=pending,
                    seed_to_check="" if stored.checked else stored.seed,
                )
            except SessionFull:
                # A retry of a request that filled the session gets that request's answer.
                kept = await self._kept_answer(current.session_id)
                if kept is None:
                    raise
                return kept
            except HydrateFirst:
                # The store lost the session or holds an older revision: the seed's wins.
                stored = await self.store.hydrate(current, stored.seed)
                continue
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

    async def _kept_answer(self, session_id: str) -> str | None:
        if self.idempotency_key is None:
            return None
        return await self.store.kept_answer(session_id, self.idempotency_key)

    async def answer(self, response: Response, asked: Session) -> MessageOut:
        """Stream the reply to `asked`'s last message (our lease held), then store it."""
        text, unpublished = await self._stream_reply(asked)
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
                answered,
                seed,
                expected_rev=asked.rev,
                lease_token=self.lease_token,
                answer=to_keep,
                deltas=unpublished,
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

    async def _stream_reply(self, asked: Session) -> tuple[str, list[dict[str, object]]]:
        """The reply, each delta announced on the session's events as it comes, and the
        deltas not announced yet (the reply's write appends them); on failure the reply is
        announced as interrupted and nothing of it is stored."""
        session_id, rev = asked.session_id, asked.rev + 1
        # Renews the lease while the provider thinks; each publication of deltas renews it too.
        renewing = asyncio.create_task(self._renew(session_id))
        # The request's own queue of deltas (DeltaPublisher).
        queue: list[dict[str, object]] = []
        deltas = DeltaPublisher(self.store, session_id, self.lease_token, self.lease_ms, queue)
        parts: list[str] = []
        try:
            async for delta in self.assistant.reply(asked.turns[:-1], asked.turns[-1].text):
                parts.append(delta)
                deltas.add({"type": "delta", "rev": rev, "text": delta})
            unpublished = await deltas.finish()
        except ReplyLost:
            raise UpstreamUnavailable(STALLED) from None
        except BaseException:
            renewing.cancel()
            deltas.cancel()
            await asyncio.shield(self.store.abandon(session_id, self.lease_token))
            raise
        finally:
            renewing.cancel()
        return "".join(parts), unpublished

    async def _renew(self, session_id: str) -> None:
        with contextlib.suppress(ReplyLost, StoreUnavailable):
            while True:
                await asyncio.sleep(self.lease_ms / 3_000)
                await self.store.stream_delta(session_id, self.lease_token, self.lease_ms, [])

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


class DeltaPublisher:
    """Publishes a reply's deltas in the background, as many per script as arrived since the
    last one was sent, so a provider that streams fast costs few round trips; the first delta
    still goes out at once. What was not sent when the reply ends goes with the reply's write:
    a fast provider's whole reply takes no round trip of its own."""

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        token: str,
        lease_ms: int,
        queue: list[dict[str, object]],
    ) -> None:
        self.store, self.session_id, self.token, self.lease_ms = store, session_id, token, lease_ms
        # Deltas not sent yet: one request's, never shared.
        self.pending = queue
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, event: dict[str, object]) -> None:
        """Queue a delta; raises the error that stopped publishing (e.g. ReplyLost), if any."""
        if self._task is None:
            # Runs at the provider's next pause; a provider that never pauses finishes first.
            self._task = asyncio.create_task(self._publish())
        elif self._task.done():
            self._task.result()
        self.pending.append(event)
        self._wake.set()

    async def finish(self) -> list[dict[str, object]]:
        """Stop publishing once the delta in flight (if any) is stored; the deltas left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        return self.pending

    def cancel(self) -> None:
        if self._task is None:
            return
        if self._task.done() and not self._task.cancelled():
            # The reply failed anyway: its publishing error is not reported on its own.
            self._task.exception()
        self._task.cancel()

    async def _publish(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            # Stream order is kept: one publication at a time, and the reply's write after.
            events = self.pending[:]
            self.pending.clear()
            await self.store.stream_delta(self.session_id, self.token, self.lease_ms, events)


# A reply whose instance stalled past its lease is interrupted for everyone; it never writes it.
STALLED = "this instance stalled past its reply lease; the reply is interrupted"


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(stored: HydratedSession, store: StoreDep) -> None:
    await store.delete(stored.session.session_id)
