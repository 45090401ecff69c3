"""SessionKeyspace: what SessionStore stands on: the store's connection, the key layout
(keys.py), how long a session lives, and each session's stream of events."""

from collections.abc import Mapping

import orjson

from ..errors import ClientError
from .backend import Effect, StoreBackend, StreamEntries
from .keys import KeyLayout

# ARGV: stream length, ttl ms, event
_APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# ARGV: tombstone ttl ms, event
_DELETE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'deleted', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[2], 60000)
return 1
"""

STREAM_LENGTH = 1000


class SessionDeleted(ClientError):
    code = "session_deleted"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} was deleted.")


class WriteConflict(Exception):
    """Another request wrote the session first; reload and try again."""


class SessionKeyspace:
    def __init__(self, backend: StoreBackend, *, prefix: str, ttl_seconds: int) -> None:
        self.backend = backend
        self.keys = KeyLayout(prefix)
        self._ttl_ms = str(ttl_seconds * 1000)

    async def read_events(self, session_id: str, after: str, block_ms: int) -> StreamEntries:
        return await self.backend.read_stream(self.keys.events(session_id), after, block_ms)

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
