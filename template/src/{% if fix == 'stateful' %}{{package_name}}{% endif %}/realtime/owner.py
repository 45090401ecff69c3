"""Owner: this realtime process as the owner of sessions.

It registers its public address with a lease that its heartbeat renews, handles the inputs API
instances post to its inbox stream, and on shutdown hands its sessions to another live owner
before it leaves. Which sessions it owns is recorded in the store (OwnerRegistry), never here.
"""

import asyncio
import contextlib
import logging
import secrets

from pydantic import ValidationError

from ..errors import ClientError
from ..problems import PROBLEMS, CloseCode
from ..sessions.backend import StoreUnavailable
from ..sessions.connect_tokens import ConnectTokens
from ..sessions.keyspace import SessionDeleted
from ..sessions.registry import NoOwnerAvailable, OwnerLost, OwnerRegistry
from ..sessions.store import SessionNotFound, SessionStore
from ..sessions.tokens import TokenError
from ..settings import Settings
from .live import Close, LiveRegistry
from .upstream import Input, MessageInvalid, UpstreamUnavailable

log = logging.getLogger(__name__)


class OwnerFailed(UpstreamUnavailable):
    """Handling an input failed in a way nobody foresaw; the traceback is in the owner's log."""

    code = "owner_error"


# How long shutdown waits for inputs being handled before it hands their sessions over.
HANDLER_GRACE_SECONDS = 10
# While the store fails, the heartbeat tries again this often, whatever the lease: once the
# store is back, the owner holds its lease and its live sessions again within about a second.
STORE_RETRY_SECONDS = 0.5


class Owner:
    """This process as an owner of sessions: identity, lease, inbox, and graceful hand-over."""

    def __init__(
        self, settings: Settings, store: SessionStore, owners: OwnerRegistry, tokens: ConnectTokens
    ) -> None:
        assert settings.realtime_public_url is not None, "check_realtime_ready() requires it"
        # A new identity per process: a restarted process holds none of its predecessor's
        # connections, so it must not inherit its sessions either.
        self.id = f"{settings.instance_name}-{secrets.token_hex(4)}"
        self.url = settings.realtime_public_url
        self.owners = owners
        self.live = LiveRegistry(
            store,
            owners,
            owner=self.id,
            upstream_url=settings.upstream_url,
            upstream_timeout=settings.upstream_timeout_seconds,
        )
        self.tokens = tokens
        self._lease = settings.lease_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register, or, with the store unreachable, start anyway and register once it is back:
        one slow store must not stop a deploy, and /healthz says why no session comes here."""
        registered = True
        try:
            await self.owners.register(self.id, self.url, self._lease)
        except StoreUnavailable as error:
            registered = False
            log.error(
                "owner %s: session store at %s is unreachable (%s); this owner takes no sessions "
                "until it is back, and registers within %g s of its return",
                self.id,
                self.owners.backend.address,
                error,
                STORE_RETRY_SECONDS,
            )
        beating = asyncio.create_task(self._heartbeat(registered))
        self._tasks = [beating, asyncio.create_task(self._consume())]

    async def admit(self, session_id: str, token: str) -> Close | None:
        """Why a browser socket for `session_id` cannot be served here, or None if it can."""
        try:
            self.tokens.verify(token, session_id)
        except TokenError as error:
            return PROBLEMS.closing(type(error))
        placement = await self.owners.locate(session_id)
        if placement is None:
            return PROBLEMS.closing(SessionNotFound)
        if placement.owner == self.id:
            return None
        if placement.url:
            return CloseCode.OWNER_ELSEWHERE, placement.url
        return PROBLEMS.closing(OwnerLost)

    async def _heartbeat(self, registered: bool) -> None:
        beat = self._lease / 3
        wait = beat if registered else STORE_RETRY_SECONDS
        while True:
            await asyncio.sleep(wait)
            # Until the store answers again, try sooner than a beat: the lease may lapse meanwhile.
            wait = STORE_RETRY_SECONDS
            live = self.live.session_ids
            try:
                if await self.owners.heartbeat(self.id, self._lease, live):
                    wait = beat
                    continue
                if self._stopping is not None:
                    return  # leaving: never register again
                # Paused or cut off past our lease (or never registered): take it again, with
                # the live sessions nobody has moved elsewhere meanwhile.
                kept = await self.owners.register(self.id, self.url, self._lease, live)
            except StoreUnavailable:
                continue
            wait = beat
            # A warning either way, so it shows where the unreachable store was logged.
            happened = "lease lapsed" if registered else "store is back"
            log.warning(
                "owner %s: %s; registered again, keeping %d of its %d live sessions",
                self.id,
                happened,
                len(kept),
                len(live),
            )
            registered = True
            for session_id in live:
                if session_id not in kept:
                    await self.live.drop(session_id, PROBLEMS.closing(OwnerLost))

    async def _consume(self) -> None:
        after = "0-0"
        while True:
            try:
                entries = await self.owners.read_inbox(self.id, after, block_ms=1_000)
            except StoreUnavailable:
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            for entry_id, fields in entries:
                after = entry_id
                task = asyncio.create_task(self._handle(entry_id, fields))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        session_id = fields.get("session", "")
        item = Input(kind="close")
        failure: type[ClientError] | None = None
        try:
            item = Input.model_validate_json(fields.get("data", ""))
            if item.kind == "close":
                await self.live.drop(session_id, PROBLEMS.closing(SessionDeleted))
            else:
                await self.live.handle(session_id, item)
        except SessionDeleted:
            failure = SessionNotFound
        except ClientError as error:
            # Not found, owner lost, upstream unavailable; a store outage is reported below if
            # the store is back by then.
            failure = type(error)
        except ValidationError:
            failure = MessageInvalid
        except Exception:
            # Whatever went wrong, the waiting API instance gets an answer (502), not a timeout,
            # and the entry is marked handled; the traceback goes to the log.
            log.exception("owner %s: input %s failed", self.id, entry_id)
            failure = OwnerFailed
        try:
            if failure:
                await self.live.report(session_id, item.request_id, failure)
            await self.owners.done(self.id, entry_id)
        except StoreUnavailable:
            log.warning("owner %s: store unavailable; input %s not acknowledged", self.id, entry_id)

    async def stop(self) -> None:
        """Hand every session to another live owner, forward unhandled inputs, then leave.

        The heartbeat runs until just before the lease is given up, so it never lapses midway.
        Safe to call twice (the server's shutdown, then the app's lifespan): it runs once.
        """
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        heartbeat, consumer = self._tasks
        consumer.cancel()
        # Let inputs in progress finish, within bounds: orchestrators kill after a grace period.
        await asyncio.wait([consumer, *self._handlers], timeout=HANDLER_GRACE_SECONDS)
        try:
            await self._hand_over()
        except StoreUnavailable as exc:
            log.error(
                "owner %s: store unavailable during hand-over (%s); sessions stay with "
                "this owner and are reported lost once its lease lapses",
                self.id,
                exc,
            )
        finally:
            heartbeat.cancel()
            await self.live.drop_all(PROBLEMS.closing(OwnerLost))

    async def _hand_over(self) -> None:
        await self.owners.retire(self.id)
        moved = kept = 0
        for session_id in await self.owners.owned(self.id) | set(self.live.session_ids):
            # After the exchange in progress, if any: it is recorded here before the move.
            async with self.live.quiet(session_id):
                try:
                    rehomed = await self.owners.rehome(session_id, leaving=self.id)
                except NoOwnerAvailable:
                    # Nobody to take it: once our lease is gone it is reported lost, resumable.
                    kept += 1
                    await self.live.drop(session_id, PROBLEMS.closing(OwnerLost))
                    continue
                if rehomed is not None:
                    moved += 1
                    await self.live.drop(
                        session_id, (CloseCode.OWNER_ELSEWHERE, rehomed.placement.url)
                    )
        await self._forward_inbox()
        # The heartbeat ends first: a beat after deregistering would register us again.
        heartbeat = self._tasks[0]
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await self.owners.deregister(self.id)
        # Inputs posted while we forwarded: nothing can reach our inbox after deregistering.
        await self._forward_inbox()
        log.info("owner %s: handed %d sessions over, %d left resumable", self.id, moved, kept)

    async def _forward_inbox(self) -> None:
        """Inputs posted since the consumer stopped: each session's new owner takes them."""
        for entry_id, fields in await self.owners.pending(self.id):
            session_id, data = fields.get("session", ""), fields.get("data", "")
            try:
                await self.owners.enqueue(session_id, data)
            except OwnerLost:
                # Nobody took the session: its poster hears so now rather than timing out.
                with contextlib.suppress(ValidationError):
                    request_id = Input.model_validate_json(data).request_id
                    await self.live.report(session_id, request_id, OwnerLost)
            except (SessionNotFound, SessionDeleted):
                pass
            await self.owners.done(self.id, entry_id)
