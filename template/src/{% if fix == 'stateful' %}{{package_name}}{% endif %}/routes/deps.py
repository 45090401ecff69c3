"""The dependencies of the HTTP API: every route that takes `{session_id}` declares
`OwnedSession`, which loads the durable transcript and finds the session's live owner, so a
request reaches the owner from any API instance, or gets an explicit outcome: 404 unknown,
410 deleted, 410 owner lost (resumable)."""

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from ..sessions.connect_tokens import ConnectTokens
from ..sessions.event_hub import EventHub
from ..sessions.idempotency import IDEMPOTENCY_KEY_PATTERN, IdempotencyKeyInvalid
from ..sessions.models import SESSION_ID_PATTERN, Session
from ..sessions.registry import OwnerLost, OwnerRegistry, Placement
from ..sessions.store import SessionNotFound, SessionStore
from ..settings import Settings


async def get_store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.store
    return store


async def get_owners(request: Request) -> OwnerRegistry:
    owners: OwnerRegistry = request.app.state.owners
    return owners


async def get_tokens(request: Request) -> ConnectTokens:
    tokens: ConnectTokens = request.app.state.tokens
    return tokens


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.hub
    return hub


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[SessionStore, Depends(get_store)]
OwnersDep = Annotated[OwnerRegistry, Depends(get_owners)]
TokensDep = Annotated[ConnectTokens, Depends(get_tokens)]
HubDep = Annotated[EventHub, Depends(get_hub)]


@dataclass(frozen=True)
class Inbox:
    """The way to a session's owner from any API instance. Posting checks, in the same round
    trip, that the session exists and that its owner's lease is live."""

    session_id: str
    owners: OwnerRegistry

    async def post(self, payload: str) -> str:
        """Post an input; the session's last event id before it (the owner's reply follows).

        Raises SessionNotFound, SessionDeleted, or OwnerLost when the owner's lease has lapsed.
        """
        return await self.owners.enqueue(self.session_id, payload)


async def session_inbox(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)], owners: OwnersDep
) -> Inbox:
    return Inbox(session_id, owners)


@dataclass(frozen=True)
class Owned:
    session: Session
    placement: Placement


async def owned_session(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    store: StoreDep,
    owners: OwnersDep,
) -> Owned:
    """The session's transcript and its live owner; raises the problem that says why not."""
    stored = await store.load(session_id)  # raises SessionDeleted (410) after DELETE
    if stored is None:
        raise SessionNotFound(session_id)
    placement = await owners.locate(session_id)
    if placement is None:
        # Deleted since it was loaded (DELETE forgets the owner after the tombstone): 410.
        await store.load(session_id)
    if placement is None or not placement.url:
        raise OwnerLost(session_id)
    return Owned(stored.session, placement)


async def known_session(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)], store: StoreDep
) -> Session:
    """The session's durable transcript, whether or not its owner is alive (resume, delete)."""
    stored = await store.load(session_id)
    if stored is None:
        raise SessionNotFound(session_id)
    return stored.session


async def streamed_session(owned: Annotated[Owned, Depends(owned_session)]) -> Session:
    """The session of an event stream (routes/events.py): one with a live owner."""
    return owned.session


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    """The request's Idempotency-Key, if it sent one (sessions/idempotency.py)."""
    if key is not None and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) is None:
        raise IdempotencyKeyInvalid
    return key


SessionInbox = Annotated[Inbox, Depends(session_inbox)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
OwnedSession = Annotated[Owned, Depends(owned_session)]
KnownSession = Annotated[Session, Depends(known_session)]
StreamedSession = Annotated[Session, Depends(streamed_session)]
