"""OwnerRegistry: which realtime instance owns each live session, kept in the shared store.

A live upstream connection cannot be stored in Redis; who holds it can. Layout under the prefix:
    {prefix}:owner:{owner}          the owner's public URL, with a lease (PX) its heartbeat renews
    {prefix}:owners                 set: registered owners (pruned of lapsed leases on each pick)
    {prefix}:owned:{owner}          set: the sessions an owner holds (its load)
    {prefix}:session-owner:{id}     the owner of a session
    {prefix}:inbox:{owner}          stream: inputs for the owner's sessions, posted by API instances

Every operation is one Lua script: looking up the owner and posting to its inbox, or checking a
lease and moving a session, happen atomically, so no input can land in a lapsed owner's inbox.
"""

from dataclasses import dataclass
from typing import Literal

from .backend import StoreBackend, StreamEntries
from .store import SessionDeleted

# ARGV: prefix, owner, url, lease ms
_REGISTER = """
redis.call('SET', ARGV[1] .. ':owner:' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', ARGV[1] .. ':owners', ARGV[2])
return 1
"""

# Renew the lease, and the ownership records of the sessions the owner holds live, which expire
# like the transcripts they belong to. 0 when the lease had already lapsed: the owner's sessions
# may have been re-homed by now. ARGV: prefix, owner, lease ms, session ttl ms, live sessions...
_HEARTBEAT = """
if redis.call('PEXPIRE', ARGV[1] .. ':owner:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
for i = 5, #ARGV do
  if redis.call('GET', ARGV[1] .. ':session-owner:' .. ARGV[i]) == ARGV[2] then
    redis.call('PEXPIRE', ARGV[1] .. ':session-owner:' .. ARGV[i], ARGV[4])
  end
end
-- Prune a sample of the owned set: sessions that expired or moved no longer count as load.
local owned = ARGV[1] .. ':owned:' .. ARGV[2]
for _, session in ipairs(redis.call('SRANDMEMBER', owned, 100)) do
  if redis.call('GET', ARGV[1] .. ':session-owner:' .. session) ~= ARGV[2] then
    redis.call('SREM', owned, session)
  end
end
return 1
"""

# Stop taking new sessions; the lease stays while the owner hands its sessions over.
# ARGV: prefix, owner
_RETIRE = "return redis.call('SREM', ARGV[1] .. ':owners', ARGV[2])"

# ARGV: prefix, owner
_DEREGISTER = """
redis.call('DEL', ARGV[1] .. ':owner:' .. ARGV[2])
redis.call('SREM', ARGV[1] .. ':owners', ARGV[2])
return 1
"""

# Shared by the scripts that place a session: the least loaded live owner other than ARGV[3].
_PICK = """
local function pick(prefix, excluded)
  local best, best_url, best_load = nil, nil, nil
  for _, owner in ipairs(redis.call('SMEMBERS', prefix .. ':owners')) do
    local url = redis.call('GET', prefix .. ':owner:' .. owner)
    if not url then
      redis.call('SREM', prefix .. ':owners', owner)
    elseif owner ~= excluded then
      local load = redis.call('SCARD', prefix .. ':owned:' .. owner)
      if best_load == nil or load < best_load or (load == best_load and owner < best) then
        best, best_url, best_load = owner, url, load
      end
    end
  end
  return best, best_url
end
local function assign(prefix, session, owner, ttl)
  local previous = redis.call('GET', prefix .. ':session-owner:' .. session)
  if previous then redis.call('SREM', prefix .. ':owned:' .. previous, session) end
  redis.call('SET', prefix .. ':session-owner:' .. session, owner, 'PX', ttl)
  redis.call('SADD', prefix .. ':owned:' .. owner, session)
end
"""

# A new session on the least loaded live owner. ARGV: prefix, session, excluded, ttl ms
# -> {owner, url}; {} when no owner is alive
_PLACE = (
    _PICK
    + """
local owner, url = pick(ARGV[1], ARGV[3])
if not owner then return {} end
assign(ARGV[1], ARGV[2], owner, ARGV[4])
return {owner, url}
"""
)

# Re-home a session whose owner is gone or retiring (resume), or hand it over from an owner
# that is shutting down (ARGV[3] = that owner; only if it still owns the session). A retiring
# owner has left the owners set but keeps its lease while it hands over: it is never kept.
# ARGV: prefix, session, from owner ('' = whichever lapsed), ttl ms
# -> {'missing'} | {'alive', owner, url} | {'none'} | {'moved', owner, url}
_REHOME = (
    _PICK
    + """
local current = redis.call('GET', ARGV[1] .. ':session-owner:' .. ARGV[2])
if not current then return {'missing'} end
if ARGV[3] == '' then
  local url = redis.call('GET', ARGV[1] .. ':owner:' .. current)
  if url and redis.call('SISMEMBER', ARGV[1] .. ':owners', current) == 1 then
    return {'alive', current, url}
  end
elseif current ~= ARGV[3] then
  return {'alive', current, redis.call('GET', ARGV[1] .. ':owner:' .. current) or ''}
end
local owner, url = pick(ARGV[1], current)
if not owner then return {'none'} end
assign(ARGV[1], ARGV[2], owner, ARGV[4])
return {'moved', owner, url}
"""
)

# ARGV: prefix, session -> {} unknown | {owner, url or ''}
_LOCATE = """
local owner = redis.call('GET', ARGV[1] .. ':session-owner:' .. ARGV[2])
if not owner then return {} end
return {owner, redis.call('GET', ARGV[1] .. ':owner:' .. owner) or ''}
"""

# Post an input to the session owner's inbox, only if the session exists (its transcript is
# SessionStore's {prefix}:session:{id}) and its owner's lease is live: one round trip in all.
# ARGV: prefix, session, payload
# -> {'missing'} | {'deleted'} | {'lost'} | {'ok', the session's last event id or '0-0'}
_ENQUEUE = """
local transcript = ARGV[1] .. ':session:' .. ARGV[2]
if redis.call('HEXISTS', transcript, 'deleted') == 1 then return {'deleted'} end
if redis.call('EXISTS', transcript) == 0 then return {'missing'} end
local owner = redis.call('GET', ARGV[1] .. ':session-owner:' .. ARGV[2])
if not owner or redis.call('EXISTS', ARGV[1] .. ':owner:' .. owner) == 0 then
  return {'lost'}
end
redis.call('XADD', ARGV[1] .. ':inbox:' .. owner, '*', 'session', ARGV[2], 'data', ARGV[3])
local last = redis.call('XREVRANGE', ARGV[1] .. ':events:' .. ARGV[2], '+', '-', 'COUNT', 1)
if #last == 0 then return {'ok', '0-0'} end
return {'ok', last[1][1]}
"""

# ARGV: prefix, session
_FORGET = """
local owner = redis.call('GET', ARGV[1] .. ':session-owner:' .. ARGV[2])
if owner then redis.call('SREM', ARGV[1] .. ':owned:' .. owner, ARGV[2]) end
redis.call('DEL', ARGV[1] .. ':session-owner:' .. ARGV[2])
return 1
"""


class NoOwnerAvailable(Exception):
    """No realtime instance holds a live lease: nothing can take the session now."""


class OwnerLost(Exception):
    """The session's owner stopped renewing its lease; resume the session elsewhere."""


class SessionMissing(Exception):
    """No such session: never created, or expired."""


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
        self._prefix = prefix
        self._ttl_ms = str(session_ttl_seconds * 1000)

    def inbox_key(self, owner: str) -> str:
        return f"{self._prefix}:inbox:{owner}"

    def fence(self, session_id: str, owner: str) -> tuple[str, str]:
        """The keys a write checks to be sure `owner` still owns the session, with a live lease
        (SessionStore.write_as_owner)."""
        return f"{self._prefix}:session-owner:{session_id}", f"{self._prefix}:owner:{owner}"

    async def register(self, owner: str, url: str, lease_seconds: int) -> None:
        await self.backend.run(_REGISTER, [], [self._prefix, owner, url, str(lease_seconds * 1000)])

    async def heartbeat(self, owner: str, lease_seconds: int, live: list[str]) -> bool:
        renewed = await self.backend.run(
            _HEARTBEAT, [], [self._prefix, owner, str(lease_seconds * 1000), self._ttl_ms, *live]
        )
        return bool(renewed)

    async def retire(self, owner: str) -> None:
        await self.backend.run(_RETIRE, [], [self._prefix, owner])

    async def deregister(self, owner: str) -> None:
        await self.backend.run(_DEREGISTER, [], [self._prefix, owner])

    async def place(self, session_id: str, *, excluded: str = "") -> Placement:
        reply = await self.backend.run(
            _PLACE, [], [self._prefix, session_id, excluded, self._ttl_ms]
        )
        if not reply:
            raise NoOwnerAvailable(session_id)
        return Placement(owner=reply[0], url=reply[1])

    async def rehome(self, session_id: str, *, leaving: str = "") -> Rehomed | None:
        """Move a session off a lapsed owner (or off `leaving`); None if it has no owner record.

        Raises NoOwnerAvailable when it must move and no other owner is alive.
        """
        reply = await self.backend.run(
            _REHOME, [], [self._prefix, session_id, leaving, self._ttl_ms]
        )
        if reply[0] == "missing":
            return None
        if reply[0] == "none":
            raise NoOwnerAvailable(session_id)
        return Rehomed(outcome=reply[0], placement=Placement(owner=reply[1], url=reply[2]))

    async def locate(self, session_id: str) -> Placement | None:
        """The session's owner; its url is '' when that owner's lease has lapsed."""
        reply = await self.backend.run(_LOCATE, [], [self._prefix, session_id])
        if not reply:
            return None
        return Placement(owner=reply[0], url=reply[1])

    async def enqueue(self, session_id: str, payload: str) -> str:
        """Post an input to the owner's inbox; the session's last event id before it.

        Raises SessionMissing, SessionDeleted, or OwnerLost when the owner's lease has lapsed.
        """
        reply = await self.backend.run(_ENQUEUE, [], [self._prefix, session_id, payload])
        if reply[0] == "missing":
            raise SessionMissing(session_id)
        if reply[0] == "deleted":
            raise SessionDeleted(session_id)
        if reply[0] == "lost":
            raise OwnerLost(session_id)
        last_event_id: str = reply[1]
        return last_event_id

    async def owned(self, owner: str) -> set[str]:
        members = await self.backend.run(
            "return redis.call('SMEMBERS', KEYS[1])", [f"{self._prefix}:owned:{owner}"], []
        )
        return set(members)

    async def forget(self, session_id: str) -> None:
        await self.backend.run(_FORGET, [], [self._prefix, session_id])

    async def read_inbox(self, owner: str, after: str, block_ms: int) -> StreamEntries:
        return await self.backend.read_stream(self.inbox_key(owner), after, block_ms)

    async def done(self, owner: str, entry_id: str) -> None:
        """Drop a handled input: the inbox only ever holds what its owner has not handled."""
        await self.backend.run(
            "return redis.call('XDEL', KEYS[1], ARGV[1])", [self.inbox_key(owner)], [entry_id]
        )

    async def pending(self, owner: str) -> StreamEntries:
        """Inputs in the owner's inbox that it has not handled, without waiting for more."""
        reply = await self.backend.run(
            "return redis.call('XRANGE', KEYS[1], '-', '+')", [self.inbox_key(owner)], []
        )
        return [
            (entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in reply
        ]
