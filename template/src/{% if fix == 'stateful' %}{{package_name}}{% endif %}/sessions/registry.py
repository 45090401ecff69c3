"""OwnerRegistry: which realtime instance owns each live session, kept in the shared store.

A live upstream connection cannot be stored in Redis; who holds it can (the keys are in keys.py).
Each script touches one hash slot, so the registry runs on a Redis Cluster as on one Redis: a
session's slot holds its ownership record, the fleet's slot holds the owners, their leases, loads
and inboxes. An operation that needs both runs one script in each, ordered so that the fence of a
turn's write (store.py: the ownership record names the writer) stays right:
- post an input: the session's script reads its owner, then the fleet's posts to that owner's
  inbox only while its lease is live. Moved in between, the old owner refuses the input (it no
  longer owns the session) and reports the session lost, so the poster gets 410 and resumes;
  moved and deregistered in between (a hand-over), the post finds no lease and, having posted
  nothing, asks again who owns the session;
- place or move a session: the fleet's script picks the owner and counts the load, then the
  session's record is set, by compare-and-set when it moves: of two movers, one wins and the
  other reports the winner's owner.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ClientError
from .backend import Effect, StoreBackend, StreamEntries
from .keys import KeyLayout
from .keyspace import SessionDeleted, adopt_legacy_keys
from .store import SessionNotFound

# Fleet scripts: KEYS[1] is the owners set, which routes them to the fleet's slot; ARGV[1] to
# ARGV[4] are KeyLayout.for_fleet_scripts(), since a script finds most owners as it runs and
# builds their keys from these (all in the fleet's slot).
_FLEET = """
local OWNERS, LEASE, OWNED, INBOX = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
"""

# Take the lease (again, after it lapsed). ARGV: names, owner, url, lease ms
_TAKE_LEASE = (
    _FLEET
    + """
redis.call('SET', LEASE .. ARGV[5], ARGV[6], 'PX', ARGV[7])
redis.call('SADD', OWNERS, ARGV[5])
return 1
"""
)

# Renew the lease; 0 when it had already lapsed: the owner's sessions may have been re-homed by
# now. Then a sample of the sessions it counts as its load, for the heartbeat to prune those
# that expired or moved. ARGV: names, owner, lease ms, sample size -> {1 or 0, sessions...}
_RENEW_LEASE = (
    _FLEET
    + """
if redis.call('PEXPIRE', LEASE .. ARGV[5], ARGV[6]) == 0 then return {0} end
return {1, unpack(redis.call('SRANDMEMBER', OWNED .. ARGV[5], ARGV[7]))}
"""
)

# A session the owner holds live stays its own: its record is renewed if it names the owner,
# written again if the store lost it (only while the session exists and is not deleted), and
# left alone if another owner took it meanwhile. KEYS: the record, the transcript.
# ARGV: owner, session ttl ms -> 1 kept, 0 not
_KEEP = """
local current = redis.call('GET', KEYS[1])
local orphan = not current and redis.call('EXISTS', KEYS[2]) == 1
  and redis.call('HEXISTS', KEYS[2], 'deleted') == 0
if current == ARGV[1] or orphan then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Renew a record only while it names the owner. KEYS: the record. ARGV: owner, ttl ms -> 1 | 0
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# Shared by the fleet scripts that place a session: the least loaded live owner other than
# `excluded`, counted as holding `session` from now on.
_PICK = (
    _FLEET
    + """
local function pick(excluded, session)
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
  if best then redis.call('SADD', OWNED .. best, session) end
  return best, best_url
end
"""
)

# A new session on the least loaded live owner. ARGV: names, session, excluded
# -> {owner, url}; {} when no owner is alive
_PLACE = (
    _PICK
    + """
local owner, url = pick(ARGV[6], ARGV[5])
if not owner then return {} end
return {owner, url}
"""
)

# Where a session whose record names `current` goes (resume, or hand-over by `leaving`, who
# must still own it). A retiring owner has left the owners set but keeps its lease while it
# hands over: it is never kept. ARGV: names, session, current, leaving ('' = whichever lapsed)
# -> {'alive', owner, url} | {'none'} | {'moved', owner, url}
_REHOME = (
    _PICK
    + """
local session, current, leaving = ARGV[5], ARGV[6], ARGV[7]
if leaving == '' then
  local url = redis.call('GET', LEASE .. current)
  if url and redis.call('SISMEMBER', OWNERS, current) == 1 then
    return {'alive', current, url}
  end
elseif current ~= leaving then
  return {'alive', current, redis.call('GET', LEASE .. current) or ''}
end
local owner, url = pick(current, session)
if not owner then return {'none'} end
redis.call('SREM', OWNED .. current, session)
return {'moved', owner, url}
"""
)

# Move the record from one owner to another, only if it still names the first (compare-and-set).
# KEYS: the record. ARGV: from, to, ttl ms -> 1 moved (or already there); 0 someone else moved it
_MOVE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[2] then return 1 end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# The session's side of posting an input: it must exist and not be deleted; its owner, and its
# last event id before the input (its reply follows it). KEYS: transcript, events, record.
# -> {'missing'} | {'deleted'} | {'ok', owner or '', last event id or '0-0'}
_ADDRESS = """
if redis.call('HEXISTS', KEYS[1], 'deleted') == 1 then return {'deleted'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
return {'ok', redis.call('GET', KEYS[3]) or '', last[1] and last[1][1] or '0-0'}
"""

# The fleet's side: the input goes to the owner's inbox only while its lease is live, checked
# in the same step, so nothing lands in an inbox nobody reads. KEYS: the owner's lease, its
# inbox. ARGV: session, payload -> 1 posted; 0 the lease lapsed
_POST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'session', ARGV[1], 'data', ARGV[2])
return 1
"""

# KEYS: the record -> the owner it named, now forgotten, or false
_FORGET = """
local owner = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
return owner
"""

# One command per member: unpack() of many ARGV would overflow Lua's stack. KEYS: the set.
_SADD_ALL = "for _, member in ipairs(ARGV) do redis.call('SADD', KEYS[1], member) end"
_SREM_ALL = "for _, member in ipairs(ARGV) do redis.call('SREM', KEYS[1], member) end"

# Sessions the heartbeat checks in the owner's load each beat, besides its live ones.
PRUNE_SAMPLE = 20
# How often rehome tries again when another instance moved the session under it.
REHOME_TRIES = 3


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
        self._names = list(self.keys.for_fleet_scripts())
        self._ttl_ms = str(session_ttl_seconds * 1000)

    def inbox_key(self, owner: str) -> str:
        return self.keys.inbox(owner)

    async def _fleet(self, script: str, args: list[str], *, effect: Effect = Effect.WRITE) -> Any:
        return await self.backend.run(
            script, [self.keys.owners()], [*self._names, *args], effect=effect
        )

    async def register(
        self, owner: str, url: str, lease_seconds: int, live: Sequence[str] = ()
    ) -> set[str]:
        """Take the owner's lease; of the sessions it holds `live`, those it keeps (the others
        were moved to another owner, or deleted, while its lease had lapsed)."""
        lease_ms = str(lease_seconds * 1000)
        await self._fleet(_TAKE_LEASE, [owner, url, lease_ms], effect=Effect.GUARDED_WRITE)
        kept_flags = await asyncio.gather(
            *(
                self.backend.run(
                    _KEEP,
                    [self.keys.owner_of(session_id), self.keys.session(session_id)],
                    [owner, self._ttl_ms],
                    effect=Effect.GUARDED_WRITE,
                )
                for session_id in live
            )
        )
        kept = [session_id for session_id, flag in zip(live, kept_flags, strict=True) if flag]
        if kept:
            await self._count(owner, kept)
        return set(kept)

    async def _count(self, owner: str, sessions: list[str]) -> None:
        await self.backend.run(
            _SADD_ALL,
            [self.keys.owned(owner)],
            sessions,
            effect=Effect.GUARDED_WRITE,
        )

    async def heartbeat(self, owner: str, lease_seconds: int, live: list[str]) -> bool:
        """Renew the lease, and the ownership records of the sessions the owner holds live (they
        expire like the transcripts they belong to). False when the lease had already lapsed:
        the owner's sessions may have been re-homed by now."""
        reply = await self._fleet(
            _RENEW_LEASE,
            [owner, str(lease_seconds * 1000), str(PRUNE_SAMPLE)],
            effect=Effect.GUARDED_WRITE,
        )
        if not reply[0]:
            return False
        live_set = set(live)
        sample = [session_id for session_id in reply[1:] if session_id not in live_set]
        renewed, current = await asyncio.gather(
            asyncio.gather(
                *(
                    self.backend.run(
                        _RENEW,
                        [self.keys.owner_of(session_id)],
                        [owner, self._ttl_ms],
                        effect=Effect.GUARDED_WRITE,
                    )
                    for session_id in live
                )
            ),
            asyncio.gather(*(self._owner_of(session_id) for session_id in sample)),
        )
        # Sessions that expired or moved no longer count as this owner's load.
        gone = [s for s, flag in zip(live, renewed, strict=True) if not flag]
        gone += [s for s, named in zip(sample, current, strict=True) if named != owner]
        if gone:
            await self.backend.run(
                _SREM_ALL,
                [self.keys.owned(owner)],
                gone,
                effect=Effect.GUARDED_WRITE,
            )
        return True

    async def _owner_of(self, session_id: str) -> str | None:
        named: str | None = await self.backend.run(
            "return redis.call('GET', KEYS[1])",
            [self.keys.owner_of(session_id)],
            [],
            effect=Effect.READ,
        )
        return named

    async def retire(self, owner: str) -> None:
        """Stop taking new sessions; the lease stays while the owner hands its sessions over."""
        await self.backend.run(
            "return redis.call('SREM', KEYS[1], ARGV[1])", [self.keys.owners()], [owner]
        )

    async def deregister(self, owner: str) -> None:
        await self.backend.run(
            "redis.call('DEL', KEYS[2]) return redis.call('SREM', KEYS[1], ARGV[1])",
            [self.keys.owners(), self.keys.lease(owner)],
            [owner],
        )

    async def place(self, session_id: str, *, excluded: str = "") -> Placement:
        """A new (or ownerless) session on the least loaded live owner: counted in its load
        first, then named in the session's record."""
        reply = await self._fleet(_PLACE, [session_id, excluded])
        if not reply:
            raise NoOwnerAvailable
        placement = Placement(owner=reply[0], url=reply[1])
        await self.backend.run(
            "return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])",
            [self.keys.owner_of(session_id)],
            [placement.owner, self._ttl_ms],
            effect=Effect.GUARDED_WRITE,
        )
        return placement

    async def rehome(self, session_id: str, *, leaving: str = "") -> Rehomed | None:
        """Move a session off a lapsed owner (or off `leaving`); None if it has no owner record.

        Raises NoOwnerAvailable when it must move and no other owner is alive.
        """
        for _ in range(REHOME_TRIES):
            current = await self._owner_of(session_id)
            if current is None:
                return None
            reply = await self._fleet(_REHOME, [session_id, current, leaving])
            if reply[0] == "none":
                raise NoOwnerAvailable
            placement = Placement(owner=reply[1], url=reply[2])
            if reply[0] == "alive":
                return Rehomed(outcome="alive", placement=placement)
            moved = await self.backend.run(
                _MOVE,
                [self.keys.owner_of(session_id)],
                [current, placement.owner, self._ttl_ms],
                effect=Effect.GUARDED_WRITE,
            )
            if moved:
                return Rehomed(outcome="moved", placement=placement)
            # Another instance moved it first: this pick is not the session's load after all,
            # and the next try finds where the session went.
            await self.backend.run(
                "return redis.call('SREM', KEYS[1], ARGV[1])",
                [self.keys.owned(placement.owner)],
                [session_id],
                effect=Effect.GUARDED_WRITE,
            )
        found = await self.locate(session_id)
        return Rehomed(outcome="alive", placement=found) if found else None

    async def locate(self, session_id: str) -> Placement | None:
        """The session's owner; its url is '' when that owner's lease has lapsed."""
        owner = await self._owner_of(session_id)
        if owner is None:
            return None
        url = await self.backend.run(
            "return redis.call('GET', KEYS[1])", [self.keys.lease(owner)], [], effect=Effect.READ
        )
        return Placement(owner=owner, url=url or "")

    async def enqueue(self, session_id: str, payload: str, *, tried: str = "") -> str:
        """Post an input to the owner's inbox; the session's last event id before it.

        Raises SessionNotFound, SessionDeleted, or OwnerLost when the owner's lease has lapsed.
        """
        keys = self.keys
        reply = await self.backend.run(
            _ADDRESS,
            [keys.session(session_id), keys.events(session_id), keys.owner_of(session_id)],
            [],
            effect=Effect.READ,
        )
        if reply[0] == "missing":
            if await adopt_legacy_keys(self.backend, keys, session_id):
                return await self.enqueue(session_id, payload)
            raise SessionNotFound(session_id)
        if reply[0] == "deleted":
            raise SessionDeleted(session_id)
        _, owner, last_event_id = reply
        if not owner or owner == tried:
            raise OwnerLost(session_id)
        posted = await self.backend.run(
            _POST, [keys.lease(owner), keys.inbox(owner)], [session_id, payload]
        )
        if not posted:
            # The two steps can straddle a hand-over: the leaving owner moved the session and
            # deregistered in between. Posted nowhere yet, so ask once more who owns it now.
            return await self.enqueue(session_id, payload, tried=owner)
        return str(last_event_id)

    async def owned(self, owner: str) -> set[str]:
        members = await self.backend.run(
            "return redis.call('SMEMBERS', KEYS[1])",
            [self.keys.owned(owner)],
            [],
            effect=Effect.READ,
        )
        return set(members)

    async def forget(self, session_id: str) -> None:
        """The session has no owner any more, nor counts as anyone's load."""
        owner = await self.backend.run(
            _FORGET, [self.keys.owner_of(session_id)], [], effect=Effect.GUARDED_WRITE
        )
        if owner:
            await self.backend.run(
                "return redis.call('SREM', KEYS[1], ARGV[1])",
                [self.keys.owned(owner)],
                [session_id],
                effect=Effect.GUARDED_WRITE,
            )

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
