"""EventHub: one reader per instance for every event stream the instance serves.

A stream that blocked on its own Redis connection would hold one per open stream, and a few
hundred idle browser tabs would starve every other request. Here one task reads all the
streams listened to, in one XREAD BLOCK on one connection, and hands each listener the entries
after its own position. A new listener first reads its backlog itself (a plain read, no BLOCK),
then joins; joining wakes the blocked read with CLIENT UNBLOCK, so the next read names its
stream at once instead of after the wait. Every key the read names comes from KeyLayout.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..errors import ClientError
from .backend import StoreUnavailable, StreamEntries, StreamReader, StreamsLost
from .keyspace import SessionKeyspace, Snapshot, event_order

log = logging.getLogger(__name__)

# How long one read waits for new events before it reads again. Short, because it also bounds
# how late a new listener is served when its wake reached the store before the read did.
BLOCK_MS = 1_000
# Streams named by one XREAD; with more, every group but the last is read without waiting
# and the last one waits briefly, so no group's events wait behind another's.
KEYS_PER_READ = 1_000
SHORT_BLOCK_MS = 100
# After the store fails, the reader tries again this much later.
RETRY_SECONDS = 1.0
# How many times (5 ms apart) a wake is retried while a read is on its way to the store: a
# busy event loop can take a while to send it.
WAKE_ATTEMPTS = 100


class TooManyStreams(ClientError):
    code = "too_many_streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This instance serves its limit of {limit} event streams; nothing else is "
            "refused. Reconnect after Retry-After (any instance may take the stream)."
        )


@dataclass(eq=False)
class Listener:
    """One reader of one session's events: an SSE stream, or a request awaiting a reply."""

    hub: "EventHub"
    session_id: str
    key: str
    # The id of the last entry handed over; the next one is newer.
    after: str
    # Resuming from a client's Last-Event-ID: check first that nothing after it was trimmed.
    resuming: bool
    counted: bool
    # Batches of entries from the hub; None ends the stream (the store failed).
    batches: asyncio.Queue[StreamEntries | None] = field(default_factory=asyncio.Queue)

    async def snapshot_if_trimmed(self) -> Snapshot | None:
        """The session's snapshot, when events after this listener's position are gone; the
        listener then goes on from the newest event that snapshot includes."""
        if not self.resuming:
            return None
        snapshot = await self.hub.keyspace.snapshot_if_trimmed(self.session_id, self.after)
        if snapshot is not None:
            self.after = snapshot.event_id
        return snapshot

    async def entries(self) -> AsyncIterator[tuple[str, dict[str, str]]]:
        """The entries after `after`: the backlog first, then new ones as they come. Ends when
        the store fails (StoreUnavailable); a reader then reconnects from its last id."""
        while True:
            backlog = await self.hub.keyspace.read_events(self.session_id, self.after)
            for entry in backlog:
                self.after = entry[0]
                yield entry
            if not backlog:
                break
        self.hub.join(self)
        while (batch := await self.batches.get()) is not None:
            for entry in batch:
                yield entry
        raise StoreUnavailable("the event reader lost the store")

    def close(self) -> None:
        self.hub.leave(self)


class EventHub:
    def __init__(
        self, keyspace: SessionKeyspace, reader: StreamReader, *, max_streams: int
    ) -> None:
        self.keyspace = keyspace
        self._reader = reader
        self._max_streams = max_streams
        self._streams = 0
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._changed = asyncio.Event()
        self._round = 0
        self._task: asyncio.Task[None] | None = None
        # The wake under way, and the read it is meant to end.
        self._waking: asyncio.Task[None] | None = None
        self._waking_round = -1

    def start(self) -> None:
        """Start reading; also done by the first listener, for apps run without a lifespan."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        for task in (self._waking, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        await self._reader.close()

    def listen(
        self, session_id: str, after: str, *, resuming: bool = False, counted: bool = True
    ) -> Listener:
        """A listener of `session_id`'s events after `after`; close() it when done. A counted
        one is an event stream, refused with TooManyStreams past the instance's limit."""
        if counted:
            if self._streams >= self._max_streams:
                raise TooManyStreams(self._max_streams)
            self._streams += 1
        self.start()
        key = self.keyspace.keys.events(session_id)
        return Listener(self, session_id, key, after, resuming=resuming, counted=counted)

    def join(self, listener: Listener) -> None:
        self._listeners[listener.key].add(listener)
        self._changed.set()
        if self._waking is None or self._waking.done() or self._waking_round != self._round:
            self._waking_round = self._round
            self._waking = asyncio.create_task(self._wake(self._round))

    def leave(self, listener: Listener) -> None:
        """Idempotent: a stream's end and its response's end may both call it."""
        if listener.counted:
            listener.counted = False
            self._streams -= 1
        listeners = self._listeners.get(listener.key)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.key]

    async def _wake(self, round_: int) -> None:
        # The wake can reach the store before the read it is meant to end: try again, while
        # the same read is still under way.
        for _ in range(WAKE_ATTEMPTS):
            if self._round != round_ or await self._reader.wake():
                return
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        while True:
            if not self._listeners:
                await self._changed.wait()
            self._changed.clear()
            positions = {
                key: min((listener.after for listener in listeners), key=event_order)
                for key, listeners in self._listeners.items()
            }
            try:
                replies = await self._read(positions)
            except StreamsLost as lost:
                # A cluster node failed: only the streams in its slots end; their clients
                # resume from Last-Event-ID once a replica serves them.
                log.warning("%d event streams lost the store (%s); they end", len(lost.lost), lost)
                self._end(lost.lost)
                replies = lost.entries
            except StoreUnavailable as error:
                log.warning("event streams lost the store (%s); they end, clients resume", error)
                self._end_all()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            finally:
                self._round += 1
            for key, entries in replies:
                self._deliver(key, entries)

    async def _read(self, positions: dict[str, str]) -> list[tuple[str, StreamEntries]]:
        keys = list(positions)
        groups = [keys[at : at + KEYS_PER_READ] for at in range(0, len(keys), KEYS_PER_READ)]
        replies: list[tuple[str, StreamEntries]] = []
        lost: StreamsLost | None = None
        for number, group in enumerate(groups, start=1):
            last = number == len(groups)
            block_ms = 0 if not last else BLOCK_MS if len(groups) == 1 else SHORT_BLOCK_MS
            if self._changed.is_set() or replies or lost:
                block_ms = 0  # someone joined, or events wait: do not sit in a blocking read
            try:
                replies += await self._reader.read({key: positions[key] for key in group}, block_ms)
            except StreamsLost as error:
                replies += error.entries
                lost = StreamsLost(str(error), [], error.lost | (lost.lost if lost else set()))
        if lost is not None:
            raise StreamsLost(str(lost), replies, lost.lost)
        return replies

    def _deliver(self, key: str, entries: StreamEntries) -> None:
        for listener in self._listeners.get(key, ()):
            position = event_order(listener.after)
            fresh = [entry for entry in entries if event_order(entry[0]) > position]
            if fresh:
                listener.after = fresh[-1][0]
                listener.batches.put_nowait(fresh)

    def _end(self, keys: frozenset[str]) -> None:
        for key in keys:
            for listener in self._listeners.pop(key, ()):
                listener.batches.put_nowait(None)

    def _end_all(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.batches.put_nowait(None)
        self._listeners.clear()
