"""OwnerRegistry: which realtime instance owns each live session, kept in the shared store.

A live upstream connection cannot be stored in Redis; who holds it can (the keys are in keys.py).
Every operation is one Lua script: looking up the owner and posting to its inbox, or checking a
lease and moving a session, happen atomically, so no input can land in a lapsed owner's inbox.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ClientError
from .backend import Effect, StoreBackend, StreamEntries
from .keys import KeyLayout
from .keyspace import SessionDeleted
from .store import SessionNotFound

# Every script starts with the key names KeyLayout.for_scripts() gives (ARGV[1] to ARGV[5]): a
# script finds most owners as it runs, so it builds their keys from these.
_NAMES = """
local OWNERS, LEASE, OWNED, OWNER_OF, INBOX = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
"""

# Take the lease (again, after it lapsed), and keep the sessions the owner still holds live: a
# session's ownership record is renewed if it names the owner, written again if the store lost
# it (only while the session exists and is not deleted), and left alone if another owner took
# the session meanwhile. KEYS: the live sessions' transcripts. ARGV: names, owner, url, lease ms,
# session ttl ms, the live sessions (in the order of KEYS) -> the live sessions the owner keeps
_REGISTER = (
    _NAMES
    + """
local owner = ARGV[6]
redis.call('SET', LEASE .. owner, ARGV[7], 'PX', ARGV[8])
redis.call('SADD', OWNERS, owner)
local kept = {}
for i, transcript in ipairs(KEYS) do
  local session = ARGV[9 + i]
  local current = redis.call('GET', OWNER_OF .. session)
  local orphan = not current and redis.call('EXISTS', transcript) == 1
    and redis.call('HEXISTS', transcript, 'deleted') == 0
  if current == owner or orphan then
    redis.call('SET', OWNER_OF .. session, owner, 'PX', ARGV[9])
    redis.call('SADD', OWNED .. owner, session)
    kept[#kept + 1] = session
  end
end
return kept
"""
)

# Renew the lease, and the ownership records of the sessions the owner holds live, which expire
# like the transcripts they belong to. 0 when the lease had already lapsed: the owner's sessions
# may have been re-homed by now. ARGV: names, owner, lease ms, session ttl ms, live sessions...
_HEARTBEAT = (
    _NAMES
    + """
local owner = ARGV[6]
if redis.call('PEXPIRE', LEASE .. owner, ARGV[7]) == 0 then return 0 end
for i = 9, #ARGV do
  if redis.call('GET', OWNER_OF .. ARGV[i]) == owner then
    redis.call('PEXPIRE', OWNER_OF .. ARGV[i], ARGV[8])
  end
end
-- Prune a sample of the owned set: sessions that expired or moved no longer count as load.
for _, session in ipairs(redis.call('SRANDMEMBER', OWNED .. owner, 100)) do
  if redis.call('GET', OWNER_OF .. session) ~= owner then
    redis.call('SREM', OWNED .. owner, session)
  end
end
return 1
"""
)

# Stop taking new sessions; the lease stays while the owner hands its sessions over.
# ARGV: names, owner
_RETIRE = _NAMES + "return redis.call('SREM', OWNERS, ARGV[6])"

# ARGV: names, owner
_DEREGISTER = (
    _NAMES
    + """
redis.call('DEL', LEASE .. ARGV[6])
redis.call('SREM', OWNERS, ARGV[6])
return 1
"""
)

# Shared by the scripts that place a session: the least loaded live owner other than `excluded`.
_PICK = (
    _NAMES
    + """
local function pick(excluded)
  local best, best_url, best_load = nil, nil, nil
  for _, owner in ipairs(redis.call('SMEMBERS', OWNERS)) do
    local url = redis.call('GET', LEASE .. owner)
    if not url then
      redis.call('SREM', OWNERS, owner)
    elseif owner ~= excluded then
      local load = redis.call('SCARD', OWNED .. owner)
      if best_load == nil or load < best_load or (load == best_load and owner < best) then
        best, best_url, best_load = owner, url, load
      end
    end
  end
  return best, best_url
end
local function assign(session, owner, ttl)
  local previous = redis.call('GET', OWNER_OF .. session)
  if previous then redis.call('SREM', OWNED .. previous, session) end
  redis.call('SET', OWNER_OF .. session, owner, 'PX', ttl)
  redis.call('SADD', OWNED .. owner, session)
end
"""
)

# A new session on the least loaded live owner. ARGV: names, session, excluded, ttl ms
# -> {owner, url}; {} when no owner is alive
_PLACE = (
    _PICK
    + """
local owner, url = pick(ARGV[7])
if not owner then return {} end
assign(ARGV[6], owner, ARGV[8])
return {owner, url}
"""
)

# Re-home a session whose owner is gone or retiring (resume), or hand it over from an owner
# that is shutting down (`leaving`; only if it still owns the session). A retiring owner has
# left the owners set but keeps its lease while it hands over: it is never kept.
# ARGV: names, session, leaving owner ('' = whichever lapsed), ttl ms
# -> {'missing'} | {'alive', owner, url} | {'none'} | {'moved', owner, url}
_REHOME = (
    _PICK
    + """
local session, leaving = ARGV[6], ARGV[7]
local current = redis.call('GET', OWNER_OF .. session)
if not current then return {'missing'} end
if leaving == '' then
  local url = redis.call('GET', LEASE .. current)
  if url and redis.call('SISMEMBER', OWNERS, current) == 1 then
    return {'alive', current, url}
  end
elseif current ~= leaving then
  return {'alive', current, redis.call('GET', LEASE .. current) or ''}
end
local owner, url = pick(current)
if not owner then return {'none'} end
assign(session, owner, ARGV[8])
return {'moved', owner, url}
"""
)

# ARGV: names, session -> {} unknown | {owner, url or ''}
_LOCATE = (
    _NAMES
    + """
local owner = redis.call('GET', OWNER_OF .. ARGV[6])
if not owner then return {} end
return {owner, redis.call('GET', LEASE .. owner) or ''}
"""
)

# Post an input to the session owner's inbox, only if the session exists (its transcript,
# KEYS[1]) and its owner's lease is live: one round trip in all.
# KEYS: the session's transcript, its events. ARGV: names, session, payload
# -> {'missing'} | {'deleted'} | {'lost'} | {'ok', the session's last event id or '0-0'}
_ENQUEUE = (
    _NAMES
    + """
if redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return {'deleted'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local owner = redis.call('GET', OWNER_OF .. ARGV[6])
if not owner or redis.call('EXISTS', LEASE .. owner) == 0 then
  return {'lost'}
end
redis.call('XADD', INBOX .. owner, '*', 'session', ARGV[6], 'data', ARGV[7])
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last == 0 then return {'ok', '0-0'} end
return {'ok', last[1][1]}
"""
)

# ARGV: names, session
_FORGET = (
    _NAMES
    + """
local owner = redis.call('GET', OWNER_OF .. ARGV[6])
if owner then redis.call('SREM', OWNED .. owner, ARGV[6]) end
redis.call('DEL', OWNER_OF .. ARGV[6])
return 1
"""
)


# Why the stateful services refuse a Redis Cluster (backend.refuse_cluster): these scripts find
# owners and sessions as they run, so their keys cannot be declared up front, and they span
# owners' and sessions' keys that a cluster keeps on different nodes.
NEEDS_ONE_REDIS = (
    "the registry of realtime owners needs one Redis: its scripts find owners and sessions as "
    "they run and touch keys that a cluster keeps on different nodes"
)


class NoOwnerAvailable(ClientError):
    """No realtime instance holds a live lease: nothing can take the session now."""

    code = "no_owner_available"

    def __init__(self) -> None:
        super().__init__(
            "No realtime instance holds a live lease, so none can take the session; nothing was "
            "created or changed. Try again shortly."
        )


class OwnerLost(ClientError):
    """The session's owner stopped renewing its lease; resume the session elsewhere."""

    code = "session_owner_lost"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"The realtime instance that held session {session_id} stopped renewing its lease, "
            "and its live connection went with it. The transcript is safe: POST "
            f"/api/sessions/{session_id}/resume moves the session to a live instance."
        )


class OwnerTimeout(ClientError):
    """The owner did not answer an input in time; it may still handle it."""

    code = "owner_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The session's owner did not answer within {seconds:g} s. The input may still be "
            "handled: its turn then appears in the event stream."
        )


@dataclass(frozen=True)
class Placement:
    owner: str
    url: str


@dataclass(frozen=True)
class Rehomed:
    outcome: Literal["alive", "moved"]
    placement: Placement


class OwnerRegistry:
    def __init__(self, backend: StoreBackend, *, prefix: str, session_ttl_seconds: int) -> None:
        self.backend = backend
        self.keys = KeyLayout(prefix)
        self._names = self.keys.for_scripts()
        self._ttl_ms = str(session_ttl_seconds * 1000)

    def inbox_key(self, owner: str) -> str:
        return self.keys.inbox(owner)

    async def register(
        self, owner: str, url: str, lease_seconds: int, live: Sequence[str] = ()
    ) -> set[str]:
        """Take the owner's lease; of the sessions it holds `live`, those it keeps (the others
        were moved to another owner, or deleted, while its lease had lapsed)."""
        kept = await self.backend.run(
            _REGISTER,
            [self.keys.session(session_id) for session_id in live],
            [*self._names, owner, url, str(lease_seconds * 1000), self._ttl_ms, *live],
            effect=Effect.GUARDED_WRITE,
        )
        return set(kept)

    async def heartbeat(self, owner: str, lease_seconds: int, live: list[str]) -> bool:
        renewed = await self.backend.run(
            _HEARTBEAT,
            [],
            [*self._names, owner, str(lease_seconds * 1000), self._ttl_ms, *live],
            effect=Effect.GUARDED_WRITE,
        )
        return bool(renewed)

    async def retire(self, owner: str) -> None:
        await self.backend.run(_RETIRE, [], [*self._names, owner])

    async def deregister(self, owner: str) -> None:
        await self.backend.run(_DEREGISTER, [], [*self._names, owner])

    async def place(self, session_id: str, *, excluded: str = "") -> Placement:
        reply = await self.backend.run(
            _PLACE, [], [*self._names, session_id, excluded, self._ttl_ms]
        )
        if not reply:
            raise NoOwnerAvailable
        return Placement(owner=reply[0], url=reply[1])

    async def rehome(self, session_id: str, *, leaving: str = "") -> Rehomed | None:
        """Move a session off a lapsed owner (or off `leaving`); None if it has no owner record.

        Raises NoOwnerAvailable when it must move and no other owner is alive.
        """
        reply = await self.backend.run(
            _REHOME, [], [*self._names, session_id, leaving, self._ttl_ms]
        )
        if reply[0] == "missing":
            return None
        if reply[0] == "none":
            raise NoOwnerAvailable
        return Rehomed(outcome=reply[0], placement=Placement(owner=reply[1], url=reply[2]))

    async def locate(self, session_id: str) -> Placement | None:
        """The session's owner; its url is '' when that owner's lease has lapsed."""
        reply = await self.backend.run(_LOCATE, [], [*self._names, session_id], effect=Effect.READ)
        if not reply:
            return None
        return Placement(owner=reply[0], url=reply[1])

    async def enqueue(self, session_id: str, payload: str) -> str:
        """Post an input to the owner's inbox; the session's last event id before it.

        Raises SessionNotFound, SessionDeleted, or OwnerLost when the owner's lease has lapsed.
        """
        keys = [self.keys.session(session_id), self.keys.events(session_id)]
        reply = await self.backend.run(_ENQUEUE, keys, [*self._names, session_id, payload])
        if reply[0] == "missing":
            raise SessionNotFound(session_id)
        if reply[0] == "deleted":
            raise SessionDeleted(session_id)
        if reply[0] == "lost":
            raise OwnerLost(session_id)
        last_event_id: str = reply[1]
        return last_event_id

    async def owned(self, owner: str) -> set[str]:
        members = await self.backend.run(
            "return redis.call('SMEMBERS', KEYS[1])",
            [self.keys.owned(owner)],
            [],
            effect=Effect.READ,
        )
        return set(members)

    async def forget(self, session_id: str) -> None:
        await self.backend.run(_FORGET, [], [*self._names, session_id])

    async def read_inbox(self, owner: str, after: str, block_ms: int) -> StreamEntries:
        return await self.backend.read_stream(self.keys.inbox(owner), after, block_ms)

    async def done(self, owner: str, entry_id: str) -> None:
        """Drop a handled input: the inbox only ever holds what its owner has not handled."""
        await self.backend.run(
            "return redis.call('XDEL', KEYS[1], ARGV[1])", [self.keys.inbox(owner)], [entry_id]
        )

    async def pending(self, owner: str) -> StreamEntries:
        """Inputs in the owner's inbox that it has not handled, without waiting for more."""
        reply = await self.backend.run(
            "return redis.call('XRANGE', KEYS[1], '-', '+')",
            [self.keys.inbox(owner)],
            [],
            effect=Effect.READ,
        )
        return [
            (entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in reply
        ]
