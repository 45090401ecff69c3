"""SessionStore: sessions in the shared store, each under one hash with a revision counter.

Layout under the app's key prefix:
    {prefix}:session:{id}  hash: rev, doc (the session as JSON, its durable transcript);
                           or, after DELETE, only `deleted`, so a late input cannot revive it
    {prefix}:events:{id}   stream: one entry per event, read by every instance's SSE streams
"""

from dataclasses import dataclass

import orjson

from .backend import StoreBackend, StreamEntries
from .models import Session

# -> {doc, seed, deleted}
_LOAD = "return redis.call('HMGET', KEYS[1], 'doc', 'seed', 'deleted')"

# Compare-and-set on the revision, with the write's events, in one atomic step.
# ARGV: expected rev, new rev, doc, seed, ttl ms, stream length, events...
# -> 1 written; 0 someone else wrote first; -1 deleted
_WRITE = """
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'doc', ARGV[3], 'seed', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if #ARGV > 6 then
  for i = 7, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1
"""

# write(), fenced by ownership: only the session's owner, while its lease is live, may record a
# turn, so an owner that was paused while the session moved cannot write behind its successor.
# KEYS: session, events, the session's ownership record, the owner's lease.
# ARGV: owner, expected rev, new rev, doc, ttl ms, stream length, events...
# -> 1 written; 0 someone else wrote first; -1 deleted; -2 not (or no longer) the owner
_WRITE_AS_OWNER = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] or redis.call('EXISTS', KEYS[4]) == 0 then
  return -2
end
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[3], 'doc', ARGV[4], 'seed', '')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[i])
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
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


class SessionDeleted(Exception):
    pass


@dataclass(frozen=True)
class Stored:
    session: Session


class WriteConflict(Exception):
    """Another request wrote the session first; reload and try again."""


class NotOwner(WriteConflict):
    """The writer no longer owns the session (it moved, or the writer's lease lapsed)."""


class SessionStore:
    def __init__(self, backend: StoreBackend, *, prefix: str, ttl_seconds: int) -> None:
        self.backend = backend
        self._prefix = prefix
        self._ttl_ms = str(ttl_seconds * 1000)

    def session_key(self, session_id: str) -> str:
        return f"{self._prefix}:session:{session_id}"

    def events_key(self, session_id: str) -> str:
        return f"{self._prefix}:events:{session_id}"

    async def load(self, session_id: str) -> Stored | None:
        doc, _, deleted = await self.backend.run(_LOAD, [self.session_key(session_id)], [])
        if deleted:
            raise SessionDeleted(session_id)
        if doc is None:
            return None
        return Stored(Session.model_validate_json(doc))

    async def write(
        self, session: Session, *, expected_rev: int, events: list[dict[str, object]]
    ) -> None:
        """Store `session` if the stored revision is still `expected_rev`, else WriteConflict."""
        status = await self.backend.run(
            _WRITE,
            [self.session_key(session.session_id), self.events_key(session.session_id)],
            [
                str(expected_rev),
                str(session.rev),
                session.model_dump_json(),
                "",  # the field the KV + seed fix keeps its seeds in
                self._ttl_ms,
                str(STREAM_LENGTH),
                *(orjson.dumps(event).decode() for event in events),
            ],
        )
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == 0:
            raise WriteConflict(session.session_id)

    async def write_as_owner(
        self,
        session: Session,
        *,
        expected_rev: int,
        events: list[dict[str, object]],
        owner: str,
        fence: tuple[str, str],
    ) -> None:
        """write(), only while `fence` (the session's ownership record, the owner's lease key,
        see OwnerRegistry.fence) names `owner` and its lease is live; else NotOwner."""
        status = await self.backend.run(
            _WRITE_AS_OWNER,
            [self.session_key(session.session_id), self.events_key(session.session_id), *fence],
            [
                owner,
                str(expected_rev),
                str(session.rev),
                session.model_dump_json(),
                self._ttl_ms,
                str(STREAM_LENGTH),
                *(orjson.dumps(event).decode() for event in events),
            ],
        )
        if status == -2:
            raise NotOwner(session.session_id)
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == 0:
            raise WriteConflict(session.session_id)

    async def delete(self, session_id: str) -> None:
        await self.backend.run(
            _DELETE,
            [self.session_key(session_id), self.events_key(session_id)],
            [self._ttl_ms, orjson.dumps({"type": "deleted"}).decode()],
        )

    async def read_events(self, session_id: str, after: str, block_ms: int) -> StreamEntries:
        return await self.backend.read_stream(self.events_key(session_id), after, block_ms)
