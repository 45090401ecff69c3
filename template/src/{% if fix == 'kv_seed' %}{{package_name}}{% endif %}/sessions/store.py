"""SessionStore: sessions in the shared store, each under one hash with a revision counter
(the layout is in keys.py).

The store keeps a session as the seed issued for it: compressed, authenticated (and encrypted
when seeds are), and read back by any instance that holds the key that sealed it. Only a
session whose seed would exceed SEED_MAX_BYTES is kept as its JSON document instead. So a write
carries one copy of the session, a third of the JSON's size, and a client's seed is matched to
the stored one by its fingerprint (seed.py).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from ..errors import ClientError
from .backend import Effect, StoreBackend
from .idempotency import KeptAnswer
from .keyspace import (
    STREAM_LENGTH,
    SessionDeleted,
    SessionKeyspace,
    SessionUnreadable,
    WriteConflict,
)
from .models import Session, SessionLimits
from .seed import FINGERPRINT_CHARS, SeedCodec, SeedError

# How every script below reads and writes the stored form of a session: its seed (with the
# seed's fingerprint in `tag`), or its JSON document (`doc`) when it has no seed. A hash written
# before 0.4.0 holds both, and no `tag`: its seed's fingerprint is taken from the seed itself.
_STORED_FORM = f"""
local function put(session, doc, seed)
  if seed ~= '' then
    redis.call('HSET', session, 'seed', seed, 'tag', string.sub(seed, -{FINGERPRINT_CHARS}))
    redis.call('HDEL', session, 'doc')
  else
    redis.call('HSET', session, 'doc', doc)
    redis.call('HDEL', session, 'seed', 'tag')
  end
end
local function tag_of(session)
  local tag = redis.call('HGET', session, 'tag')
  if tag then return tag end
  return string.sub(redis.call('HGET', session, 'seed') or '', -{FINGERPRINT_CHARS})
end
local function holds(session, doc, seed)
  if seed ~= '' then return tag_of(session) == string.sub(seed, -{FINGERPRINT_CHARS}) end
  return redis.call('HGET', session, 'doc') == doc
end
"""

# -> {doc, seed, deleted}
_LOAD = "return redis.call('HMGET', KEYS[1], 'doc', 'seed', 'deleted')"

# Compare-and-set on the revision, with the write's events, in one atomic step. With a third
# key, the answer to keep under a request's Idempotency-Key is written with the turn it answers,
# and a write whose key already has an answer writes nothing and returns that answer.
# ARGV: expected rev, new rev, doc ("" with a seed), seed, ttl ms, stream length, answer to
# keep, events... -> 1 written; 0 someone else wrote first; -1 deleted; a string: the answer
# kept before. A replay of a write that was applied (its reply lost) finds its own session there
# and succeeds.
_WRITE = f"""{_STORED_FORM}
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if KEYS[3] then
  local kept = redis.call('GET', KEYS[3])
  if kept then return kept end
end
if h[1] == ARGV[2] and holds(KEYS[1], ARGV[3], ARGV[4]) then return 1 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2])
put(KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[5]) end
if #ARGV > 7 then
  for i = 8, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('PUBLISH', KEYS[2], '')
end
return 1
"""

# The answer kept under an Idempotency-Key, or nil.
_KEPT_ANSWER = "return redis.call('GET', KEYS[1])"

# Hydrate from a verified seed: it wins only if the store has nothing or an older revision;
# an equal revision never overwrites. ARGV: rev, seed, ttl ms.
# -> {doc or false, seed or false} now stored; {} deleted
_HYDRATE = (
    _STORED_FORM
    + """
local h = redis.call('HMGET', KEYS[1], 'rev', 'doc', 'seed', 'deleted')
if h[4] then return {} end
if (not h[1]) or tonumber(h[1]) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'rev', ARGV[1])
  put(KEYS[1], '', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {false, ARGV[2]}
end
return {h[2], h[3]}
"""
)

# Does the store hold exactly the revision this (verified) seed was issued for? ARGV: the
# seed's fingerprint. -> 1 yes; 0 no (missing, older, newer or another seed); -1 deleted
_SEED_IS_CURRENT = f"""{_STORED_FORM}
if redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return -1 end
if tag_of(KEYS[1]) == ARGV[1] then return 1 end
return 0
"""


# The streamed reply (routes/sessions.py, Exchange). The user's message is written first, with a
# lease on the reply, so it is durable before the provider is asked and only one instance answers.
# The hash's `awaiting` field names the revision the reply will have until the reply is written
# or found interrupted (its lease lapsed: the instance answering died). A write that finds an
# interrupted reply announces it once, as an `interrupted` event, before its own write.
_INTERRUPTED = """
local function settle(session, events, lease, length, ttl)
  local awaiting = redis.call('HGET', session, 'awaiting')
  if awaiting and redis.call('EXISTS', lease) == 0 then
    redis.call('HDEL', session, 'awaiting')
    redis.call('XADD', events, 'MAXLEN', '~', length, '*', 'data',
      '{"type":"interrupted","rev":' .. awaiting .. '}')
    redis.call('PEXPIRE', events, ttl)
    redis.call('PUBLISH', events, '')
  end
end
"""

# With the client's seed (its fingerprint, ARGV[11]), the write is also the seed's freshness
# check, so a POST needs no read first: the stored revision must be the one that seed was issued
# for (the stored seed is that seed). A store that lacks the session, or holds an older
# revision, is hydrated from the seed first (-4), as a read would; a newer or another revision
# is a conflict (0).
# KEYS: session, events, lease[, answer]. ARGV: expected rev, new rev, doc ("" with a seed),
# seed, ttl ms, stream length, lease token, lease ms, pending answer record, the `turn` event,
# the client's seed's fingerprint or "".
# -> 1 written; 0 someone else wrote first; -1 deleted; -2 a reply is streaming; -4 hydrate
# first; a string: the record kept under the Idempotency-Key before
_ASK = f"""{_INTERRUPTED}{_STORED_FORM}
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if KEYS[4] then
  local kept = redis.call('GET', KEYS[4])
  if kept then return kept end
end
if h[1] == ARGV[2] and redis.call('GET', KEYS[3]) == ARGV[7] then return 1 end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[6], ARGV[5])
if ARGV[11] ~= '' and tag_of(KEYS[1]) ~= ARGV[11] then
  if (not h[1]) or tonumber(h[1]) < tonumber(ARGV[1]) then return -4 end
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'awaiting', tostring(tonumber(ARGV[2]) + 1))
put(KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[8])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[9], 'PX', ARGV[5]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[10])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', KEYS[2], '')
return 1
"""

# Deltas, only while this instance holds the reply's lease, which it also renews.
# KEYS: events, lease. ARGV: lease token, lease ms, stream length, ttl ms, events... (none:
# renew only). -> 1 done; 0 the lease is lost
_DELTA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if ARGV[5] then
  for i = 5, #ARGV do
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PUBLISH', KEYS[1], '')
end
return 1
"""

# The finished reply, compare-and-set, only while the lease is ours; releases the lease. The
# deltas not yet published (all of them, from a fast provider) are appended before the `turn`.
# KEYS: session, events, lease[, answer]. ARGV: expected rev, new rev, doc ("" with a seed), seed,
# ttl ms, stream length, lease token, answer record, the `turn` event, delta events...
# -> 1 written; 0 someone else wrote first; -1 deleted; -3 the lease was lost
_ANSWER = f"""{_STORED_FORM}
local h = redis.call('HMGET', KEYS[1], 'rev', 'deleted')
if h[2] then return -1 end
if h[1] == ARGV[2] and holds(KEYS[1], ARGV[3], ARGV[4]) then return 1 end
if redis.call('GET', KEYS[3]) ~= ARGV[7] then return -3 end
if tonumber(h[1] or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[2])
redis.call('HDEL', KEYS[1], 'awaiting')
put(KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('DEL', KEYS[3])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[8], 'PX', ARGV[5]) end
for i = 10, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[i])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', KEYS[2], '')
return 1
"""

# The provider failed: give the lease up and announce the reply as interrupted at once.
# KEYS: session, events, lease. ARGV: lease token, stream length, ttl ms.
_ABANDON = f"""{_INTERRUPTED}
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3])
return 1
"""

# Take over the reply to a stored message whose lease lapsed, if nothing was written after it.
# KEYS: session, events, lease. ARGV: the message's rev, lease token, lease ms.
# -> 1 the lease is ours; 0 the session moved on (the reply stays interrupted); -2 lease held
_RESUME = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('GET', KEYS[3]) == ARGV[2] then return 1 end
  return -2
end
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], 'awaiting', tostring(tonumber(ARGV[1]) + 1))
return 1
"""

# Is a reply streaming (1), or was it interrupted (0, announced here if not yet)?
# KEYS: session, events, lease. ARGV: stream length, ttl ms.
_REPLY_STATE = f"""{_INTERRUPTED}
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
return 0
"""


# What `ask` returns when another reply to the session is streaming.
STREAMING = "streaming"


class ReplyStreaming(ClientError):
    """Another request's reply is still streaming and did not finish in time."""

    code = "reply_in_progress"

    def __init__(self) -> None:
        super().__init__(
            "The session's previous message is still being answered; nothing was stored. "
            "Try again shortly."
        )


class ReplyLost(Exception):
    """This instance lost the reply's lease (it stalled past REPLY_LEASE_SECONDS): the reply is
    interrupted for everyone, and this instance must not write it."""


class SessionNotFound(ClientError):
    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"No session {session_id} in the store, and the request carried no seed to recover "
            "it from. Create a session with POST /api/sessions, or send the last X-Session-Seed."
        )


class SessionBusy(ClientError):
    """Writes kept conflicting: every attempt found another instance's write first."""

    code = "session_busy"

    def __init__(self) -> None:
        super().__init__("Too many concurrent writes to this session; nothing was lost. Try again.")


@dataclass(frozen=True)
class Stored:
    session: Session
    # The seed issued with this revision ("" when it exceeded the size cap).
    seed: str
    # False for a verified seed's snapshot the store was not asked about yet: the first write
    # checks that the store holds that revision (`ask`'s seed check).
    checked: bool = True


class HydrateFirst(Exception):
    """The store lacks the seed's session or holds an older revision: hydrate, then write."""


def _turn_event(session: Session) -> dict[str, object]:
    """The `turn` event of the session's newest turn."""
    return {"type": "turn", "rev": session.rev, "turn": session.turns[-1].model_dump(mode="json")}


# A turn's JSON beyond its text (role, timestamp, punctuation) takes under 80 bytes, as do a
# session's own fields (id, revision): a bound with room to spare.
FIELDS_BYTES = 128


def _fits_surely(session: Session, max_bytes: int) -> bool:
    """Whether the session's JSON is within `max_bytes` whatever its text holds, so a write
    that stores its seed need not serialise it to check: one character takes at most 6 bytes
    of JSON (an escape such as `\\u001f`)."""
    texts = sum(len(turn.text) for turn in session.turns)
    return 6 * texts + FIELDS_BYTES * (len(session.turns) + 1) <= max_bytes


class SessionStore(SessionKeyspace):
    def __init__(
        self,
        backend: StoreBackend,
        *,
        prefix: str,
        ttl_seconds: int,
        limits: SessionLimits,
        codec: SeedCodec,
    ) -> None:
        super().__init__(backend, prefix=prefix, ttl_seconds=ttl_seconds, limits=limits)
        self.codec = codec

    def stored_session(self, session_id: str, doc: str | None, seed: str | None) -> Session | None:
        """The session a stored hash holds: its JSON document when it has one (a session over
        the seed size cap, or one stored before 0.4.0), else its seed."""
        if doc is not None or not seed:
            return super().stored_session(session_id, doc, seed)
        try:
            return self.codec.decode(seed, session_id, stored=True)
        except SeedError as error:
            raise SessionUnreadable(
                f"This instance cannot read session {session_id} as stored: {error.detail}. "
                "It was sealed with a key missing from this instance's SESSION_KEYS (another "
                "instance may serve it), or the stored copy is damaged."
            ) from error

    def _seed_to_send(self, session: Session, seed: str) -> str:
        """The stored seed, or a new one when settings changed since it was stored (a lowered
        SEED_MAX_BYTES, encryption turned on) and this app would refuse it from a client."""
        if not seed or self.codec.issuable(seed):
            return seed
        return self.codec.encode(session) or ""

    def _stored_form(self, session: Session, seed: str) -> tuple[str, str]:
        """What a write stores, as (doc, seed): the seed, or the JSON document when the session
        has none. SessionFull if it outgrew MAX_SESSION_BYTES."""
        if seed and _fits_surely(session, self.limits.max_bytes):
            return "", seed
        doc = session.model_dump_json()
        self.limits.check_size(session.session_id, doc.encode())
        return ("", seed) if seed else (doc, "")

    async def load(self, session_id: str) -> Stored | None:
        doc, seed, deleted = await self.backend.run(
            _LOAD, [self.keys.session(session_id)], [], effect=Effect.READ
        )
        if deleted:
            raise SessionDeleted(session_id)
        session = self.stored_session(session_id, doc, seed)
        if session is None:
            if await self.adopt_legacy_keys(session_id):
                return await self.load(session_id)
            return None
        return Stored(session, self._seed_to_send(session, seed or ""))

    async def hydrate(self, session: Session, seed: str) -> Stored:
        """Put a verified seed's snapshot in the store unless the store is as new or newer."""
        key = self.keys.session(session.session_id)
        # The usual case: the client sends the seed issued for the stored revision, so its
        # snapshot is the stored session. Checking that moves a fingerprint, not the session.
        fingerprint = self.codec.fingerprint(seed)
        current = await self.backend.run(_SEED_IS_CURRENT, [key], [fingerprint], effect=Effect.READ)
        if current == -1:
            raise SessionDeleted(session.session_id)
        if current == 1:
            return Stored(session, seed)
        if await self.adopt_legacy_keys(session.session_id):
            return await self.hydrate(session, seed)
        reply = await self.backend.run(
            _HYDRATE,
            [key],
            [str(session.rev), seed, self._ttl_ms],
            effect=Effect.GUARDED_WRITE,
        )
        if not reply:
            raise SessionDeleted(session.session_id)
        doc, stored_seed = reply
        if stored_seed == seed:
            return Stored(session, seed)
        stored = self.stored_session(session.session_id, doc, stored_seed)
        assert stored is not None, "_HYDRATE returns the session it holds or the one it stored"
        return Stored(stored, self._seed_to_send(stored, stored_seed or ""))

    async def kept_answer(self, session_id: str, idempotency_key: str) -> str | None:
        """The answer kept under this Idempotency-Key of the session, if any (idempotency.py)."""
        key = self.keys.answer(session_id, idempotency_key)
        kept: str | None = await self.backend.run(_KEPT_ANSWER, [key], [], effect=Effect.READ)
        return kept

    async def write(
        self,
        session: Session,
        seed: str,
        *,
        expected_rev: int,
        events: list[dict[str, object]],
        answer: KeptAnswer | None = None,
    ) -> str | None:
        """Store `session` if the stored revision is still `expected_rev`, else WriteConflict;
        SessionFull, before the store is asked, if it outgrew MAX_SESSION_BYTES. With `answer`,
        keep it under its Idempotency-Key in the same step; if that key already has an answer,
        write nothing and return the answer kept (else None)."""
        doc, seed = self._stored_form(session, seed)
        keys = [self.keys.session(session.session_id), self.keys.events(session.session_id)]
        if answer is not None:
            keys.append(self.keys.answer(session.session_id, answer.key))
        status = await self.backend.run(
            _WRITE,
            keys,
            [
                str(expected_rev),
                str(session.rev),
                doc,
                seed,
                self._ttl_ms,
                str(STREAM_LENGTH),
                answer.record if answer is not None else "",
                *(orjson.dumps(event).decode() for event in events),
            ],
            effect=Effect.GUARDED_WRITE,
        )
        if isinstance(status, str):
            return status
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == 0:
            raise WriteConflict(session.session_id)
        return None

    async def ask(
        self,
        session: Session,
        seed: str,
        *,
        expected_rev: int,
        lease_token: str,
        lease_ms: int,
        pending: KeptAnswer | None,
        seed_to_check: str = "",
    ) -> str | None:
        """Store the user's message (`session` ends with it) and take the lease on its reply.
        WriteConflict as `write`; ReplyStreaming's cause, -2, is returned as "streaming". With
        `seed_to_check` (the client's, for `expected_rev`), the store must hold that seed's
        revision: HydrateFirst when it holds nothing or an older one."""
        doc, seed = self._stored_form(session, seed)
        keys = self._reply_keys(session.session_id)
        if pending is not None:
            keys.append(self.keys.answer(session.session_id, pending.key))
        event = _turn_event(session)
        status = await self.backend.run(
            _ASK,
            keys,
            [
                str(expected_rev),
                str(session.rev),
                doc,
                seed,
                self._ttl_ms,
                str(STREAM_LENGTH),
                lease_token,
                str(lease_ms),
                pending.record if pending is not None else "",
                orjson.dumps(event).decode(),
                self.codec.fingerprint(seed_to_check) if seed_to_check else "",
            ],
            effect=Effect.GUARDED_WRITE,
        )
        if isinstance(status, str):
            return status
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == -2:
            return STREAMING
        if status == -4:
            raise HydrateFirst
        if status == 0:
            raise WriteConflict(session.session_id)
        return None

    async def stream_delta(
        self, session_id: str, lease_token: str, lease_ms: int, events: list[dict[str, object]]
    ) -> None:
        """Append `delta` events and renew the reply's lease (with no event: only renew)."""
        keys = self._reply_keys(session_id)[1:]
        args = [lease_token, str(lease_ms), str(STREAM_LENGTH), self._ttl_ms]
        args += [orjson.dumps(event).decode() for event in events]
        if await self.backend.run(_DELTA, keys, args, effect=Effect.GUARDED_WRITE) == 0:
            raise ReplyLost

    async def answer(
        self,
        session: Session,
        seed: str,
        *,
        expected_rev: int,
        lease_token: str,
        answer: KeptAnswer | None,
        deltas: Sequence[Mapping[str, object]] = (),
    ) -> None:
        """Store the finished reply (`session` ends with it) and release the lease; `deltas`,
        the reply's events not yet published, go before its `turn`."""
        doc, seed = self._stored_form(session, seed)
        keys = self._reply_keys(session.session_id)
        if answer is not None:
            keys.append(self.keys.answer(session.session_id, answer.key))
        event = _turn_event(session)
        status = await self.backend.run(
            _ANSWER,
            keys,
            [
                str(expected_rev),
                str(session.rev),
                doc,
                seed,
                self._ttl_ms,
                str(STREAM_LENGTH),
                lease_token,
                answer.record if answer is not None else "",
                orjson.dumps(event).decode(),
                *(orjson.dumps(delta).decode() for delta in deltas),
            ],
            effect=Effect.GUARDED_WRITE,
        )
        if status == -1:
            raise SessionDeleted(session.session_id)
        if status == -3:
            raise ReplyLost
        if status == 0:
            raise WriteConflict(session.session_id)

    async def abandon(self, session_id: str, lease_token: str) -> None:
        """The reply failed: release its lease and announce it as interrupted."""
        await self.backend.run(
            _ABANDON,
            self._reply_keys(session_id),
            [lease_token, str(STREAM_LENGTH), self._ttl_ms],
            effect=Effect.GUARDED_WRITE,
        )

    async def resume(self, session_id: str, rev: int, lease_token: str, lease_ms: int) -> int:
        """Take the lease on the reply to the message stored at `rev`, if its first writer's
        lapsed and nothing came after it: 1 taken, 0 too late, -2 still held."""
        taken: int = await self.backend.run(
            _RESUME,
            self._reply_keys(session_id),
            [str(rev), lease_token, str(lease_ms)],
            effect=Effect.GUARDED_WRITE,
        )
        return taken

    async def reply_streaming(self, session_id: str) -> bool:
        """Whether the reply to the session's last message is streaming; if it is not, it was
        interrupted, and that is announced (once) on the session's events."""
        state = await self.backend.run(
            _REPLY_STATE,
            self._reply_keys(session_id),
            [str(STREAM_LENGTH), self._ttl_ms],
            effect=Effect.GUARDED_WRITE,
        )
        return bool(state)

    def _reply_keys(self, session_id: str) -> list[str]:
        return [
            self.keys.session(session_id),
            self.keys.events(session_id),
            self.keys.reply_lease(session_id),
        ]
