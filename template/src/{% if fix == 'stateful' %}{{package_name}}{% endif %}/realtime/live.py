"""LiveRegistry: the live upstream connections this realtime instance holds, one per session.

This is the only process-local session state in the project, and it is legitimate: a socket
cannot be stored in Redis. It is backed by the ownership records of OwnerRegistry: a session is
opened here only for the instance that owns it, its transcript is loaded from (and every turn
written to) the shared store first, and a write the store refuses (another owner's turn, or not
the owner any more) drops it. The upstream connection and the durable transcript always agree:
a new provider session (here, after a move, or after a write that may not have happened) is
opened from the stored transcript, which it hears again turn by turn.

A reply streams to the browser sockets as the upstream sends it (`delta` and `audio` events);
once the upstream is done (`response.done`) the exchange is written as two turns, with the
transcript of spoken input and of spoken replies as their text.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import ClientError
from ..problems import PROBLEMS, CloseCode
from ..sessions.backend import StoreUnavailable
from ..sessions.idempotency import Answer, IdempotentInputs
from ..sessions.keyspace import SessionDeleted, WriteConflict
from ..sessions.models import Session, SessionFull
from ..sessions.registry import OwnerLost, OwnerRegistry
from ..sessions.store import ClaimLapsed, NotOwner, SessionNotFound, SessionStore, Settles
from .upstream import Input, RealtimeProvider, Upstream, UpstreamUnavailable

# A WebSocket close code and its reason.
Close = tuple[int, str]


# Where a turn goes besides the store: the browser sockets attached to the session.
Listener = Callable[[dict[str, object]], Awaitable[None]]


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
        provider: RealtimeProvider,
        upstream_timeout: float,
    ) -> None:
        self.store = store
        self._owners = owners
        self._owner = owner
        self._provider = provider
        self._upstream_timeout = upstream_timeout
        self._inputs = IdempotentInputs(store.backend, store.keys)
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
            # DELETE forgets the owner after the tombstone: the tombstone makes that a 410.
            await self.store.load(session_id)
            raise SessionNotFound(session_id)
        if placement.owner != self._owner:
            raise OwnerLost(session_id)
        stored = await self.store.load(session_id)
        if stored is None:
            raise SessionNotFound(session_id)
        upstream = await self._connect(stored.session)
        live = self._live[session_id] = LiveSession(stored.session, upstream)
        return live

    async def _connect(self, session: Session) -> Upstream:
        return await Upstream.open(self._provider, session, silent_within=self._upstream_timeout)

    async def handle(self, session_id: str, item: Input) -> list[dict[str, object]]:
        """Send one input upstream, relay the reply as it streams, and make the exchange durable.

        The browser sockets get each delta as the upstream sends it, then the whole answer (a
        `reply` event) before the store write; the exchange is acknowledged by the `turn` events
        that follow it, with their revision, once both turns are in the store. Returns those turn
        events.
        """
        live = await self.open(session_id)
        async with live.lock:
            if self._live.get(session_id) is not live:
                # Dropped while this input waited its turn: start again from the store.
                return await self.handle(session_id, item)
            if item.idempotency_key and not await self._inputs.holds(
                session_id, item.idempotency_key, item.request_id
            ):
                # Its claim lapsed or was released: nobody waits for it, a retry may resend it.
                return []
            self.store.limits.check_room(live.session)
            try:
                if live.upstream is None:
                    await self._resync(live)
                assert live.upstream is not None

                async def relay(event: dict[str, object]) -> None:
                    await _notify(live.listeners, [{**event, "request_id": item.request_id}])

                longest = self.store.limits.max_bytes
                reply = await live.upstream.exchange(item, relay, longest=longest)
            except UpstreamUnavailable:
                await self.drop(session_id, PROBLEMS.closing(UpstreamUnavailable))
                raise
            # The browser hears the answer first; recording it is not on its way.
            answered = {"type": "reply", **reply.model_dump(), "request_id": item.request_id}
            await _notify(live.listeners, [answered])
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
            settles = None
            if item.idempotency_key:
                answer = Answer(heard=reply.heard, reply=reply.text, rev=updated.rev)
                settles = Settles(item.idempotency_key, item.request_id, answer.to_json())
            try:
                await self.store.write_as_owner(
                    updated,
                    expected_rev=live.session.rev,
                    events=events,
                    owner=self._owner,
                    settles=settles,
                )
            except WriteConflict as conflict:
                # Not ours any more (re-homed while we held it), or another
                # instance wrote it: the browser reconnects to whoever owns it now.
                await self._moved(session_id, refused=isinstance(conflict, NotOwner))
                raise OwnerLost(session_id) from None
            except SessionDeleted:
                # Deleted while the upstream answered: the turn is not recorded, nor answered.
                await self.drop(session_id, PROBLEMS.closing(SessionDeleted))
                raise
            except (StoreUnavailable, ClaimLapsed, SessionFull) as error:
                # The upstream heard an exchange the store may not have: forget this connection
                # and reopen it from the stored transcript before the next input.
                await live.upstream.close_quietly()
                live.upstream = None
                if isinstance(error, ClaimLapsed):
                    return []  # nobody waits for it (see above)
                raise
            live.session = updated
            await _notify(live.listeners, events)
        return events

    async def _resync(self, live: LiveSession) -> None:
        stored = await self.store.load(live.session.session_id)
        if stored is None:
            raise SessionNotFound(live.session.session_id)
        live.session = stored.session
        live.upstream = await self._connect(stored.session)

    async def _moved(self, session_id: str, *, refused: bool) -> None:
        """Close the session here, pointing its sockets at its current owner if it has one."""
        placement = None
        with contextlib.suppress(StoreUnavailable):
            placement = await self._owners.locate(session_id)
        if refused and placement and placement.url and placement.owner != self._owner:
            await self.drop(session_id, (CloseCode.OWNER_ELSEWHERE, placement.url))
        else:
            await self.drop(session_id, PROBLEMS.closing(OwnerLost))

    async def cancel(self, session_id: str) -> None:
        """Barge-in: the reply in progress stops; what was said of it is what gets recorded."""
        live = self._live.get(session_id)
        if live is not None and live.upstream is not None:
            # A dead connection fails the exchange in progress, which reports it.
            with contextlib.suppress(UpstreamUnavailable):
                await live.upstream.cancel()

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

    async def drop(self, session_id: str, close: Close = (1000, "")) -> None:
        """Close the session's upstream connection and tell its browser sockets why."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        code, reason = close
        await _notify(live.listeners, [{"type": "closed", "code": code, "reason": reason}])
        if live.upstream is not None:
            await live.upstream.close_quietly()

    async def drop_all(self, close: Close = (1000, "")) -> None:
        for session_id in list(self._live):
            await self.drop(session_id, close)

    async def report(self, session_id: str, item: Input, error: type[ClientError]) -> None:
        """Tell the API instance waiting for `item` that it failed, and why; nothing was
        recorded, so its Idempotency-Key is free for a retry."""
        event: dict[str, object] = {
            "type": "error",
            "code": error.code,
            "request_id": item.request_id,
        }
        await self.store.report(session_id, event)
        if item.idempotency_key:
            await self._inputs.release(session_id, item.idempotency_key, item.request_id)


async def _notify(listeners: set[Listener], events: list[dict[str, object]]) -> None:
    for listener in list(listeners):
        for event in events:
            with contextlib.suppress(Exception):  # a closing browser socket is not our error
                await listener(event)
