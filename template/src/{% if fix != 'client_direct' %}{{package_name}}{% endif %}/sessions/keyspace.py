"""SessionKeyspace: what SessionStore stands on: the store's connection, the key layout
(keys.py), how long a session lives, and each session's stream of events."""

from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from ..errors import ClientError
from .backend import Effect, StoreBackend, StreamEntries
from .keys import KeyLayout
from .models import Session, SessionLimits

# Every script that adds to a stream PUBLISHes the stream's name: on a cluster, that is how
# the instances' stream readers learn which streams have news (backend.ClusterStreamReader).
# ARGV: stream length, ttl ms, event
_APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], '')
return 1
"""

# ARGV: tombstone ttl ms, event
_DELETE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'deleted', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[2], 60000)
redis.call('PUBLISH', KEYS[2], '')
return 1
"""

# The session as stored, and the events it holds: its oldest and newest entry ids.
# -> {doc, seed, deleted, oldest id, newest id}, any of them false when absent
_SNAPSHOT = """
local h = redis.call('HMGET', KEYS[1], 'doc', 'seed', 'deleted')
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
return {h[1], h[2], h[3], oldest and oldest[1], newest and newest[1]}
"""

# A session stored under the key names before 0.4.0 (no hash tag) moves to the new names, on
# a single Redis, the first time it is missed there; the new names win if both exist.
# KEYS: legacy session, legacy events, session, events -> 1 moved; 0 nothing to move
_ADOPT_LEGACY = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('RENAME', KEYS[2], KEYS[4])
end
return 1
"""

STREAM_LENGTH = 1000


class SessionDeleted(ClientError):
    code = "session_deleted"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} was deleted.")


class SessionUnreadable(ClientError):
    """The stored session was sealed with a key this instance does not hold (KV + seed keeps a
    session as its seed): SESSION_KEYS differs between instances, as in a key rotation done in
    one step, and an instance with the key reads it. Or the stored copy is damaged."""

    code = "session_unreadable"


class WriteConflict(Exception):
    """Another request wrote the session first; reload and try again."""


@dataclass(frozen=True)
class Snapshot:
    """The session as stored, with the id of the newest event it includes ("0-0": none)."""

    session: Session
    event_id: str


def event_order(event_id: str) -> tuple[int, int]:
    """A stream entry id as a pair that sorts as Redis orders them."""
    millis, _, sequence = event_id.partition("-")
    return int(millis), int(sequence or 0)


async def adopt_legacy_keys(backend: StoreBackend, keys: KeyLayout, session_id: str) -> bool:
    """Move a session written before 0.4.0 to its new key names; True when it was there.
    Only on a single Redis: the old layout never ran on a cluster (its scripts spanned hash
    slots). Asked only when a session is missing, so a stored one costs nothing."""
    if backend.clustered:
        return False
    moved = await backend.run(
        _ADOPT_LEGACY,
        [
            keys.legacy_session(session_id),
            keys.legacy_events(session_id),
            keys.session(session_id),
            keys.events(session_id),
        ],
        [],
        # Run twice, the second finds nothing left to move.
        effect=Effect.GUARDED_WRITE,
    )
    return bool(moved)


class SessionKeyspace:
    def __init__(
        self, backend: StoreBackend, *, prefix: str, ttl_seconds: int, limits: SessionLimits
    ) -> None:
        self.backend = backend
        self.keys = KeyLayout(prefix)
        self.limits = limits
        self._ttl_ms = str(ttl_seconds * 1000)

    async def adopt_legacy_keys(self, session_id: str) -> bool:
        return await adopt_legacy_keys(self.backend, self.keys, session_id)

    async def read_events(self, session_id: str, after: str) -> StreamEntries:
        """The events after `after`, up to a page of them, without waiting for new ones."""
        return await self.backend.read_stream(self.keys.events(session_id), after, None)

    async def snapshot_if_trimmed(self, session_id: str, after: str) -> Snapshot | None:
        """The session's snapshot when events after `after` are gone from its stream (trimmed,
        expired or lost with the store), so the reader is not left with a silent gap; None
        when the stream still holds every event after `after`."""
        doc, seed, deleted, oldest, newest = await self.backend.run(
            _SNAPSHOT, [self.keys.session(session_id), self.keys.events(session_id)], []
        )
        if deleted:
            raise SessionDeleted(session_id)
        if oldest and event_order(oldest) <= event_order(after):
            return None
        session = self.stored_session(session_id, doc, seed)
        if session is None:
            return None  # expired: nothing to show; the stream's reader stops at its end
        return Snapshot(session, newest or "0-0")

    def stored_session(self, session_id: str, doc: str | None, seed: str | None) -> Session | None:
        """The session a stored hash holds (None: it holds none), from its JSON document."""
        return None if doc is None else self.parse_doc(session_id, doc)

    def parse_doc(self, session_id: str, doc: str) -> Session:
        """A stored JSON document's session; SessionUnreadable when it is damaged."""
        try:
            return Session.model_validate_json(doc)
        except ValidationError as error:
            raise SessionUnreadable(
                f"Session {session_id} is stored damaged: {error.error_count()} problem(s) in "
                "its JSON document."
            ) from None

    async def append_event(self, session_id: str, event: Mapping[str, object]) -> None:
        """An event that records no write (a write's events go with it, in one step)."""
        await self.backend.run(
            _APPEND,
            [self.keys.events(session_id)],
            [str(STREAM_LENGTH), self._ttl_ms, orjson.dumps(event).decode()],
        )

    async def delete(self, session_id: str) -> None:
        await self.backend.run(
            _DELETE,
            [self.keys.session(session_id), self.keys.events(session_id)],
            [self._ttl_ms, orjson.dumps({"type": "deleted"}).decode()],
            # Run twice, it leaves the same tombstone (and a second `deleted` no stream reads).
            effect=Effect.GUARDED_WRITE,
        )
