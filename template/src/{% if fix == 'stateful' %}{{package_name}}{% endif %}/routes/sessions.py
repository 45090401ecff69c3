"""The sessions API, stateless: it places sessions on owners and relays inputs to them.

An API instance never talks to a realtime instance directly. It posts inputs to the owner's
inbox stream and reads the owner's turns from the session's event stream, both in the store,
so it can run as serverless functions or any number of replicas.
"""

import asyncio
import base64
import contextlib
import secrets
from dataclasses import asdict

import orjson
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ClientError
from ..rate_limits import SessionCreationLimit
from ..realtime.upstream import AudioEmpty, AudioTooLarge, UpstreamUnavailable
from ..sessions.backend import StoreOutcomeUnknown, StoreUnavailable
from ..sessions.connect_tokens import SOCKET_PROTOCOL, ConnectTokens, socket_protocols
from ..sessions.event_hub import EventHub
from ..sessions.idempotency import IdempotentInputs, fingerprint
from ..sessions.keyspace import SessionDeleted, SessionUnreadable
from ..sessions.models import Session, SessionFull, Turn
from ..sessions.registry import OwnerLost, OwnerTimeout, Placement
from ..sessions.store import SessionNotFound, SessionStore
from ..settings import Settings
from .deps import (
    HubDep,
    IdempotencyKey,
    KnownSession,
    OwnedSession,
    OwnersDep,
    SessionInbox,
    SettingsDep,
    StoreDep,
    TokensDep,
)

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class Connect(BaseModel):
    """How to open the session's socket: `new WebSocket(url, protocols)`. The token travels as
    a subprotocol, never in the URL (URLs are logged); the server answers with `protocol`."""

    url: str  # the owner's WebSocket for this session
    protocols: list[str]  # the subprotocols to offer: the protocol, then `token.<token>`
    protocol: str = SOCKET_PROTOCOL
    token: str
    expires_at: int  # Unix time, seconds


class SessionOut(BaseModel):
    session_id: str
    rev: int
    turns: tuple[Turn, ...]


class Connectable(SessionOut):
    connect: Connect


class MessageIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Hello!"}]})

    text: str = Field(min_length=1, max_length=4_000)


class ExchangeOut(BaseModel):
    session_id: str
    heard: str  # the input as the upstream understood it (for audio, its transcription)
    reply: str
    rev: int


def _connect(tokens: ConnectTokens, session_id: str, placement: Placement) -> Connect:
    minted = tokens.mint(session_id)
    url = f"{placement.url}/ws/sessions/{session_id}"
    return Connect(
        url=url,
        protocols=socket_protocols(minted.token),
        token=minted.token,
        expires_at=minted.expires_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[SessionCreationLimit])
async def create_session(
    response: Response, store: StoreDep, owners: OwnersDep, tokens: TokensDep
) -> Connectable:
    session = Session.new()
    # Place first: with no live owner (NoOwnerAvailable) nothing is created.
    placement = await owners.place(session.session_id)
    try:
        await store.write(session, expected_rev=0, events=[])
    except BaseException:
        # Not created after all: the placement must not count as the owner's load.
        with contextlib.suppress(StoreUnavailable):
            await owners.forget(session.session_id)
        raise
    response.headers["Location"] = f"{router.prefix}/{session.session_id}"
    return Connectable(
        session_id=session.session_id,
        rev=session.rev,
        turns=session.turns,
        connect=_connect(tokens, session.session_id, placement),
    )


@router.get("/{session_id}")
async def read_session(owned: OwnedSession) -> SessionOut:
    session = owned.session
    return SessionOut(session_id=session.session_id, rev=session.rev, turns=session.turns)


async def _exchange(
    inbox: SessionInbox,
    hub: EventHub,
    owners: OwnersDep,
    settings: Settings,
    item: dict[str, str],
    *,
    store: SessionStore,
    idempotency_key: str | None,
    response: Response,
) -> ExchangeOut:
    """Relay an input to the owner; with an Idempotency-Key, once for all its retries."""
    session_id = inbox.session_id
    request_id = secrets.token_hex(8)
    if idempotency_key is None:
        return await _relay(inbox, hub, owners, store, settings, {**item, "request_id": request_id})
    inputs = IdempotentInputs(store.backend, store.keys)
    answered = await inputs.claim(
        session_id,
        idempotency_key,
        fingerprint=fingerprint(item),
        request_id=request_id,
        # Unanswered by then, the input is never recorded (see sessions/idempotency.py).
        pending_seconds=settings.reply_timeout_seconds + 2 * settings.lease_seconds,
        wait_seconds=settings.reply_timeout_seconds,
    )
    if answered is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return ExchangeOut(session_id=session_id, **asdict(answered))
    payload = {**item, "request_id": request_id, "idempotency_key": idempotency_key}
    try:
        return await _relay(inbox, hub, owners, store, settings, payload)
    except (OwnerTimeout, StoreOutcomeUnknown):
        # The owner may still record it: a retry gets its answer rather than a second turn.
        raise
    except ClientError:
        # Not recorded, and now never will be: a retry may send it again.
        with contextlib.suppress(StoreUnavailable):
            await inputs.release(session_id, idempotency_key, request_id)
        raise


async def _relay(
    inbox: SessionInbox,
    hub: EventHub,
    owners: OwnersDep,
    store: SessionStore,
    settings: Settings,
    payload: dict[str, str],
) -> ExchangeOut:
    """Post an input to the owner's inbox and wait for its reply on the session's events."""
    session_id = inbox.session_id
    request_id = payload["request_id"]
    after = await inbox.post(orjson.dumps(payload).decode())
    heard = ""
    # The instance's EventHub reads the reply, so a waiting request holds no store connection.
    listener = hub.listen(session_id, after, counted=False)
    try:
        async with asyncio.timeout(settings.reply_timeout_seconds):
            async for _, fields in listener.entries():
                event = orjson.loads(fields["data"])
                if event["type"] == "deleted":
                    # Deleted before the owner recorded this input: it never will.
                    raise SessionDeleted(session_id)
                if event.get("request_id") != request_id:
                    continue
                if event["type"] == "error":
                    raise _reported(session_id, event["code"])
                if event["turn"]["role"] == "user":
                    heard = event["turn"]["text"]
                    continue
                return ExchangeOut(
                    session_id=session_id,
                    heard=heard,
                    reply=event["turn"]["text"],
                    rev=event["rev"],
                )
    except TimeoutError:
        pass
    except StoreOutcomeUnknown:
        raise
    except StoreUnavailable as lost:
        # The input is in the owner's inbox: it may be recorded although this instance stopped
        # hearing the session's events, so this answer may not say that nothing changed.
        raise StoreOutcomeUnknown(str(lost)) from lost
    finally:
        listener.close()
    placement = await owners.locate(session_id)
    if placement is None:
        await store.load(session_id)  # deleted meanwhile (the owner is forgotten after): 410
    if placement is None or not placement.url:
        raise OwnerLost(session_id)
    raise OwnerTimeout(settings.reply_timeout_seconds)


def _reported(session_id: str, code: str) -> ClientError:
    """The error the owner reported for an input, as this API answers it."""
    if code == OwnerLost.code:
        return OwnerLost(session_id)
    if code == SessionNotFound.code:
        return SessionNotFound(session_id)
    if code == SessionDeleted.code:
        return SessionDeleted(session_id)
    if code == SessionFull.code:
        return SessionFull(f"Session {session_id} is full; start a new session.")
    if code == SessionUnreadable.code:
        return SessionUnreadable(f"Session {session_id} is stored damaged: no owner can read it.")
    if code == StoreUnavailable.code:
        # The owner's write may have reached the store before the connection failed.
        return StoreOutcomeUnknown("the session's owner could not reach the store")
    # Whatever else failed (the upstream, the input, the owner), the input was not handled.
    return UpstreamUnavailable(f"the session's owner reported {code}")


@router.post("/{session_id}/messages")
async def send_message(
    body: MessageIn,
    inbox: SessionInbox,
    hub: HubDep,
    owners: OwnersDep,
    settings: SettingsDep,
    store: StoreDep,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> ExchangeOut:
    """Send a message to the session's owner; its reply. With `Idempotency-Key`, a retry on any
    instance gets the first answer (header `Idempotent-Replayed: true`) and nothing twice."""
    item = {"kind": "text", "text": body.text}
    return await _exchange(
        inbox,
        hub,
        owners,
        settings,
        item,
        store=store,
        idempotency_key=idempotency_key,
        response=response,
    )


@router.post(
    "/{session_id}/audio",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def send_audio(
    request: Request,
    inbox: SessionInbox,
    hub: HubDep,
    owners: OwnersDep,
    settings: SettingsDep,
    store: StoreDep,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> ExchangeOut:
    """One chunk of audio (the raw bytes as the body); the owner streams it upstream. Takes an
    `Idempotency-Key` as messages do."""
    limit = settings.audio_max_bytes
    chunk = bytearray()
    async for part in request.stream():
        chunk += part
        if len(chunk) > limit:
            raise AudioTooLarge(limit)
    if not chunk:
        raise AudioEmpty
    audio = base64.b64encode(bytes(chunk)).decode()
    item = {"kind": "audio", "audio": audio}
    return await _exchange(
        inbox,
        hub,
        owners,
        settings,
        item,
        store=store,
        idempotency_key=idempotency_key,
        response=response,
    )


@router.post("/{session_id}/resume")
async def resume_session(
    session: KnownSession, owners: OwnersDep, tokens: TokensDep
) -> Connectable:
    """Re-home a session whose owner was lost on a live owner, with its whole transcript.

    Safe to repeat: a session whose owner is alive is left where it is, with a fresh token.
    """
    session_id = session.session_id
    rehomed = await owners.rehome(session_id)
    # No ownership record (it expired with an idle session): place it afresh.
    placement = rehomed.placement if rehomed else await owners.place(session_id)
    return Connectable(
        session_id=session_id,
        rev=session.rev,
        turns=session.turns,
        connect=_connect(tokens, session_id, placement),
    )


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(session: KnownSession, store: StoreDep, owners: OwnersDep) -> None:
    session_id = session.session_id
    # Tell a live owner to close the connection; a lost owner has none left to close.
    with contextlib.suppress(OwnerLost, SessionNotFound):
        await owners.enqueue(session_id, orjson.dumps({"kind": "close"}).decode())
    await store.delete(session_id)
    await owners.forget(session_id)
