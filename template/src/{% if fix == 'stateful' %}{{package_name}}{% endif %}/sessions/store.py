"""SessionStore: each session's durable transcript in the shared store, under one hash with a
revision counter (the layout is in keys.py)."""

from dataclasses import dataclass

import orjson

from ..errors import ClientError
from .backend import Effect
from .keyspace import STREAM_LENGTH, SessionDeleted, SessionKeyspace, WriteConflict
from .models import Session

# -> {doc, deleted}
_LOAD = "return redis.call('HMGET', KEYS[1], 'doc', 'deleted')"

# Compare-and-set on the revision, with the write's events, in one atomic step.
# ARGV: expected rev, new rev, doc, ttl ms, stream length, events...
# -> 1 written; 0 someone else wrote first; -1 deleted
# A replay of a write that was applied (its reply lost) finds its own doc there and succeeds.
_WRITE = """
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if h[1] == ARGV[2] and redis.call('HGET', KEYS[1], 'doc') == ARGV[3] then return 1 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'doc', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #ARGV > 5 then
  for i = 6, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'data', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PUBLISH', KEYS[2], '')
end
return 1
"""

# write(), fenced by ownership: only the owner the session's ownership record names may record a
# turn. A session moves to another owner only by compare-and-set on that record (registry.py),
# so an owner that was paused while the session moved can never write behind its successor. The
# fence does not look at the owner's lease, which lives in another hash slot: an owner whose lease
# lapsed while nobody moved the session may still record its turn, which is harmless, since the
# revision's compare-and-set still orders every write. The tombstone is checked first: DELETE
# also forgets the owner, and a deleted session's input is answered 410 `session_deleted`, never
# "owner lost". An input sent with an Idempotency-Key is recorded only while its request still
# holds the key (KEYS[4], idempotency.py), and its answer is kept there in the same step. Every
# key is the session's, in its one hash slot (keys.py).
# KEYS: session, events, the session's ownership record[, the key's claim].
# ARGV: owner, expected rev, new rev, doc, ttl ms, stream length, request id, answer, events...
# -> 1 written; 0 someone else wrote first; -1 deleted; -2 not (or no longer) the owner;
#    -3 the claim lapsed or was released
_WRITE_AS_OWNER = """
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end
if #KEYS == 4 then
  local claim = redis.call('HMGET', KEYS[4], 'state', 'request')
  if claim[2] ~= ARGV[7] then return -3 end
  if claim[1] == 'done' then return 1 end
end
if h[1] == ARGV[3] and redis.call('HGET', KEYS[1], 'doc') == ARGV[4] then return 1 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[3], 'doc', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
for i = 9, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[i])
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', KEYS[2], '')
if #KEYS == 4 then
  redis.call('HSET', KEYS[4], 'state', 'done', 'answer', ARGV[8])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
return 1
"""

# An event that records no write (an input's failure), unless the session is deleted: nothing
# follows the `deleted` event in a stream. KEYS: session, events. ARGV: length, ttl ms, event
_REPORT = """
if redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[2], '')
return 1
"""


class SessionNotFound(ClientError):
    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"No session {session_id}: it never existed or has expired. Sessions are never "
            "created on demand; create one with POST /api/sessions."
        )


@dataclass(frozen=True)
class Stored:
    session: Session


class NotOwner(WriteConflict):
    """The writer no longer owns the session: it moved to another owner."""


class ClaimLapsed(Exception):
    """The input's Idempotency-Key claim lapsed or was released: nobody waits for its answer,
    and a retry may send it again, so it must not be recorded."""


@dataclass(frozen=True)
class Settles:
    """The Idempotency-Key claim a write answers: its key, its request, the answer (JSON)."""

    key: str
    request_id: str
    answer: str


class SessionStore(SessionKeyspace):
    async def load(self, session_id: str) -> Stored | None:
        doc, deleted = await self.backend.run(
            _LOAD, [self.keys.session(session_id)], [], effect=Effect.READ
        )
        if deleted:
            raise SessionDeleted(session_id)
        if doc is None:
            if await self.adopt_legacy_keys(session_id):
                return await self.load(session_id)
            return None
        return Stored(self.parse_doc(session_id, doc))

    async def write(
        self, session: Session, *, expected_rev: int, events: list[dict[str, object]]
    ) -> None:
        """Store `session` if the stored revision is still `expected_rev`, else WriteConflict;
        SessionFull, before the store is asked, if it outgrew MAX_SESSION_BYTES."""
        doc = session.model_dump_json()
        self.limits.check_size(session.session_id, doc.encode())
        status = await self.backend.run(
            _WRITE,
            [self.keys.session(session.session_id), self.keys.events(session.session_id)],
            [
                str(expected_rev),
                str(session.rev),
                doc,
                self._ttl_ms,
                str(STREAM_LENGTH),
                *(orjson.dumps(event).decode() for event in events),
            ],
            effect=Effect.GUARDED_WRITE,
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
        settles: Settles | None = None,
    ) -> None:
        """write(), only while the session's ownership record names `owner` (else NotOwner),
        and `settles`'s request still holds its claim (else ClaimLapsed). SessionFull, before the
        store is asked, if it outgrew MAX_SESSION_BYTES.
        """
        session_id = session.session_id
        doc = session.model_dump_json()
        self.limits.check_size(session_id, doc.encode())
        keys = [
            self.keys.session(session_id),
            self.keys.events(session_id),
            self.keys.owner_of(session_id),
        ]
        if settles is not None:
            keys.append(self.keys.idempotency(session_id, settles.key))
        status = await self.backend.run(
            _WRITE_AS_OWNER,
            keys,
            [
                owner,
                str(expected_rev),
                str(session.rev),
                doc,
                self._ttl_ms,
                str(STREAM_LENGTH),
                settles.request_id if settles else "",
                settles.answer if settles else "",
                *(orjson.dumps(event).decode() for event in events),
            ],
            effect=Effect.GUARDED_WRITE,
        )
        if status == -3:
            raise ClaimLapsed(session_id)
        if status == -2:
            raise NotOwner(session.session_id)
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == 0:
            raise WriteConflict(session.session_id)

    async def report(self, session_id: str, event: dict[str, object]) -> None:
        """Append an event that records no write, unless the session was deleted."""
        await self.backend.run(
            _REPORT,
            [self.keys.session(session_id), self.keys.events(session_id)],
            [str(STREAM_LENGTH), self._ttl_ms, orjson.dumps(event).decode()],
        )
