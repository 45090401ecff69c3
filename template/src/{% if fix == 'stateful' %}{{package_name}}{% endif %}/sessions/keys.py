"""KeyLayout: the name of every key this app keeps in the shared store, built here alone.

A Redis Cluster runs a script on one node, so every key a script touches must share one hash
slot: the part of a key in its first pair of braces, its hash tag, decides that slot. The key
prefix never holds braces (settings refuse it), so the first braces are always these:

Per session, hash tag {<id>}: everything one session's scripts touch (store.py, idempotency.py,
and the session half of each registry.py operation) lives in that session's slot.
    <prefix>:session:{<id>}            hash: rev, doc (the session as JSON, its durable
                                       transcript); or, after DELETE, only `deleted`, so a late
                                       input cannot revive it
    <prefix>:events:{<id>}             stream: one entry per event, read by every instance's SSE;
                                       each script that adds to it also PUBLISHes its name
                                       (cluster stream readers subscribe to `events("*")`)
    <prefix>:session-owner:{<id>}      the owner of the session: the one fence of a turn's write
    <prefix>:idempotency:{<id>}:<key>  hash: a message posted with `Idempotency-Key: <key>`: what
                                       it asked (fingerprint), which request holds it, and once
                                       recorded, its answer; it lives as long as the session

The fleet of owners, hash tag {<prefix>}: one slot for the registry's fleet scripts, which find
owners as they run and build their keys from the fleet prefix (same slot, so allowed). An owner's
name comes after the tag, so braces in it (INSTANCE_NAME is free text) cannot move the slot.
    <prefix>:owners:{<prefix>}         set: registered owners (pruned of lapsed leases on each
                                       pick)
    <prefix>:owner:{<prefix>}:<owner>  the owner's public URL, with a lease (PX) its heartbeat
                                       renews
    <prefix>:owned:{<prefix>}:<owner>  set: the sessions an owner holds (its load)
    <prefix>:inbox:{<prefix>}:<owner>  stream: inputs for the owner's sessions, posted by API
                                       instances

An operation that needs both (post an input, place or move a session) runs a script in each slot,
in an order that keeps the fence right (registry.py).

Before 0.4.0 no key had a hash tag; `legacy_session` and `legacy_events` name a session's old
keys, which sessions created before the update still use until they are first missed
(keyspace.adopt_legacy_keys). Old ownership records are not carried over: resume re-creates them.
"""


def hash_tag(name: str) -> str:
    """`name` in braces: Redis Cluster hashes only that part of a key that holds it."""
    return "{" + name + "}"


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._fleet = hash_tag(prefix)

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{hash_tag(session_id)}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{hash_tag(session_id)}"

    def owner_of(self, session_id: str) -> str:
        return f"{self.prefix}:session-owner:{hash_tag(session_id)}"

    def idempotency(self, session_id: str, key: str) -> str:
        return f"{self.prefix}:idempotency:{hash_tag(session_id)}:{key}"

    def legacy_session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def legacy_events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{session_id}"

    def owners(self) -> str:
        return f"{self.prefix}:owners:{self._fleet}"

    def lease(self, owner: str) -> str:
        return f"{self.prefix}:owner:{self._fleet}:{owner}"

    def owned(self, owner: str) -> str:
        return f"{self.prefix}:owned:{self._fleet}:{owner}"

    def inbox(self, owner: str) -> str:
        return f"{self.prefix}:inbox:{self._fleet}:{owner}"

    def for_fleet_scripts(self) -> tuple[str, ...]:
        """What the fleet scripts build owners' keys from, as their first four arguments: the
        owners set, and the part before the owner of the three per-owner keys."""
        return (self.owners(), self.lease(""), self.owned(""), self.inbox(""))
