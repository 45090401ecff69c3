"""LiveRegistry: the live upstream connections this realtime instance holds, one per session.

This is the only process-local session state in the project, and it is legitimate: a socket
cannot be stored in Redis. It is backed by the ownership records of OwnerRegistry: a session is
opened here only for the instance that owns it, its transcript is loaded from (and every turn
written to) the shared store first, and a write the store refuses (another owner's turn, or not
the owner any more) drops it. The upstream connection and the durable transcript always agree:
after a write that may not have happened, the upstream is reopened from the stored transcript.
"""

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

import orjson
from pydantic import BaseModel, Field, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..sessions.backend import StoreUnavailable
from ..sessions.models import Session
from ..sessions.registry import OwnerLost, OwnerRegistry
from ..sessions.store import NotOwner, SessionStore, WriteConflict


class CloseCode(IntEnum):
    """WebSocket close codes of `/ws/sessions/{id}`; the demo page and tests rely on them."""

    OWNER_ELSEWHERE = 4307  # reason: the owner's base URL; reconnect there with the same token
    TOKEN_INVALID = 4401
    TOKEN_FOREIGN = 4403  # a valid token for another session
    SESSION_NOT_FOUND = 4404  # unknown, expired or deleted
    TOKEN_EXPIRED = 4408  # ask the API for a new one (POST /api/sessions/{id}/resume)
    SESSION_OWNER_LOST = 4410  # POST /api/sessions/{id}/resume re-homes it
    UPSTREAM_UNAVAILABLE = 4502  # refused, dropped, timed out or spoke garbage; retry later
    STORE_UNAVAILABLE = 1013  # RFC 6455 "try again later": the store cannot be reached


# Where a turn goes besides the store: the browser sockets attached to the session.
Listener = Callable[[dict[str, object]], Awaitable[None]]


class SessionGone(Exception):
    """The session has no transcript in the store: deleted or expired."""


class UpstreamUnavailable(Exception):
    """The upstream service refused, dropped, timed out or sent a frame we cannot read."""


class Input(BaseModel):
    """One input for a session, from its browser socket or from an API instance's inbox post."""

    kind: Literal["text", "audio", "close"]
    request_id: str = ""
    text: str = Field(default="", max_length=4_000)
    audio: str = ""  # base64, as it travels through the inbox

    def upstream_frame(self) -> str | bytes:
        if self.kind == "audio":
            return base64.b64decode(self.audio)
        return orjson.dumps({"type": "input.text", "text": self.text}).decode()


class UpstreamReply(BaseModel):
    heard: str  # the input as the upstream understood it (the transcription, for audio)
    text: str


class Upstream:
    """One session's connection to the upstream realtime service."""

    def __init__(self, connection: ClientConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout

    @classmethod
    async def open(cls, url: str, session: Session, *, answer_within: float) -> "Upstream":
        try:
            connection = await connect(url, open_timeout=answer_within)
            history = [{"role": turn.role, "text": turn.text} for turn in session.turns]
            # The new connection continues the conversation: the upstream gets the transcript.
            start = {"type": "session.start", "history": history}
            await connection.send(orjson.dumps(start).decode())
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        return cls(connection, answer_within)

    async def exchange(self, item: Input) -> UpstreamReply:
        try:
            # Bounded: a hung upstream must not hold the session's lock, and its inputs, forever.
            async with asyncio.timeout(self._timeout):
                await self._connection.send(item.upstream_frame())
                return UpstreamReply.model_validate_json(await self._connection.recv())
        except TimeoutError:
            raise UpstreamUnavailable(f"no answer within {self._timeout:g} s") from None
        except ValidationError as exc:
            raise UpstreamUnavailable(f"unexpected frame: {exc.errors()[0]['msg']}") from None
        except (OSError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc

    async def close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already; we are done with it
            await self._connection.close()


@dataclass
class LiveSession:
    session: Session  # as last written to the store: the upstream has heard exactly this
    upstream: Upstream | None  # None after a write that failed: reopened before the next input
    # One exchange at a time per session, in arrival order: the upstream sees one conversation.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    listeners: set[Listener] = field(default_factory=set)


class LiveRegistry:
    def __init__(
        self,
        store: SessionStore,
        owners: OwnerRegistry,
        *,
        owner: str,
        upstream_url: str,
        upstream_timeout: float,
    ) -> None:
        self.store = store
        self._owners = owners
        self._owner = owner
        self._upstream_url = upstream_url
        self._upstream_timeout = upstream_timeout
        self._live: dict[str, LiveSession] = {}
        # One opening per session at a time; other sessions open concurrently.
        self._opening: dict[str, asyncio.Task[LiveSession]] = {}

    @property
    def session_ids(self) -> list[str]:
        return list(self._live)

    async def open(self, session_id: str) -> LiveSession:
        """The session's live connection, opened from its stored transcript on first use, and
        only if the ownership record names this instance."""
        live = self._live.get(session_id)
        if live is not None:
            return live
        opening = self._opening.get(session_id)
        if opening is None:
            opening = self._opening[session_id] = asyncio.create_task(self._open(session_id))
            opening.add_done_callback(lambda _: self._opening.pop(session_id, None))
        # Shielded: one caller giving up (a browser leaving) does not cancel it for the others.
        return await asyncio.shield(opening)

    async def _open(self, session_id: str) -> LiveSession:
        placement = await self._owners.locate(session_id)
        if placement is None:
            raise SessionGone(session_id)
        if placement.owner != self._owner:
            raise OwnerLost(session_id)
        stored = await self.store.load(session_id)
        if stored is None:
            raise SessionGone(session_id)
        upstream = await self._connect(stored.session)
        live = self._live[session_id] = LiveSession(stored.session, upstream)
        return live

    async def _connect(self, session: Session) -> Upstream:
        return await Upstream.open(
            self._upstream_url, session, answer_within=self._upstream_timeout
        )

    async def handle(self, session_id: str, item: Input) -> list[dict[str, object]]:
        """Send one input upstream, relay the answer, and make the exchange durable.

        The browser sockets get the upstream's answer at once (a `reply` event), before the
        store write; the exchange is acknowledged by the `turn` events that follow it, with their
        revision, once both turns are in the store. Returns those turn events.
        """
        live = await self.open(session_id)
        async with live.lock:
            if self._live.get(session_id) is not live:
                # Dropped while this input waited its turn: start again from the store.
                return await self.handle(session_id, item)
            try:
                if live.upstream is None:
                    await self._resync(live)
                assert live.upstream is not None
                reply = await live.upstream.exchange(item)
            except UpstreamUnavailable:
                await self.drop(
                    session_id, code=CloseCode.UPSTREAM_UNAVAILABLE, reason="upstream_unavailable"
                )
                raise
            # The browser hears the answer first; recording it is not on its way.
            answer = {"type": "reply", **reply.model_dump(), "request_id": item.request_id}
            await _notify(live.listeners, [answer])
            updated = live.session.with_exchange(reply.heard, reply.text)
            events: list[dict[str, object]] = [
                {
                    "type": "turn",
                    "rev": updated.rev,
                    "turn": turn.model_dump(mode="json"),
                    "request_id": item.request_id,
                }
                for turn in updated.turns[-2:]
            ]
            try:
                await self.store.write_as_owner(
                    updated,
                    expected_rev=live.session.rev,
                    events=events,
                    owner=self._owner,
                    fence=self._owners.fence(session_id, self._owner),
                )
            except WriteConflict as conflict:
                # Not ours any more (re-homed while we held it, or our lease lapsed), or another
                # instance wrote it: the browser reconnects to whoever owns it now.
                await self._moved(session_id, refused=isinstance(conflict, NotOwner))
                raise OwnerLost(session_id) from None
            except StoreUnavailable:
                # The upstream heard an exchange the store may not have: forget this connection
                # and reopen it from the stored transcript before the next input.
                await live.upstream.close_quietly()
                live.upstream = None
                raise
            live.session = updated
            await _notify(live.listeners, events)
        return events

    async def _resync(self, live: LiveSession) -> None:
        stored = await self.store.load(live.session.session_id)
        if stored is None:
            raise SessionGone(live.session.session_id)
        live.session = stored.session
        live.upstream = await self._connect(stored.session)

    async def _moved(self, session_id: str, *, refused: bool) -> None:
        """Close the session here, pointing its sockets at its current owner if it has one."""
        placement = None
        with contextlib.suppress(StoreUnavailable):
            placement = await self._owners.locate(session_id)
        if refused and placement and placement.url and placement.owner != self._owner:
            await self.drop(session_id, code=CloseCode.OWNER_ELSEWHERE, reason=placement.url)
        else:
            await self.drop(
                session_id, code=CloseCode.SESSION_OWNER_LOST, reason="session_owner_lost"
            )

    @contextlib.asynccontextmanager
    async def quiet(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session still: no exchange is in progress, and none starts, inside."""
        live = self._live.get(session_id)
        if live is None:
            yield
            return
        async with live.lock:
            yield

    def listen(self, session_id: str, listener: Listener) -> None:
        self._live[session_id].listeners.add(listener)

    def unlisten(self, session_id: str, listener: Listener) -> None:
        live = self._live.get(session_id)
        if live is not None:
            live.listeners.discard(listener)

    async def drop(self, session_id: str, *, code: int = 1000, reason: str = "") -> None:
        """Close the session's upstream connection and tell its browser sockets why."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        await _notify(live.listeners, [{"type": "closed", "code": code, "reason": reason}])
        if live.upstream is not None:
            await live.upstream.close_quietly()

    async def drop_all(self, *, code: int = 1000, reason: str = "") -> None:
        for session_id in list(self._live):
            await self.drop(session_id, code=code, reason=reason)

    async def report(self, session_id: str, request_id: str, code: str) -> None:
        """Tell the API instance waiting for `request_id` that its input failed, and why."""
        event = orjson.dumps({"type": "error", "code": code, "request_id": request_id}).decode()
        await self.store.backend.run(
            "return redis.call('XADD', KEYS[1], '*', 'data', ARGV[1])",
            [self.store.events_key(session_id)],
            [event],
        )


async def _notify(listeners: set[Listener], events: list[dict[str, object]]) -> None:
    for listener in list(listeners):
        for event in events:
            with contextlib.suppress(Exception):  # a closing browser socket is not our error
                await listener(event)
