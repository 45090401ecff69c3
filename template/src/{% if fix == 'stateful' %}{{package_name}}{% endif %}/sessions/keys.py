"""KeyLayout: the name of every key this app keeps in the shared store, built here alone.

Under the app's key prefix:
    {prefix}:session:{id}           hash: rev, doc (the session as JSON, its durable transcript);
                                    or, after DELETE, only `deleted`, so a late input cannot
                                    revive it
    {prefix}:events:{id}            stream: one entry per event, read by every instance's SSE
    {prefix}:owner:{owner}          the owner's public URL, with a lease (PX) its heartbeat renews
    {prefix}:owners                 set: registered owners (pruned of lapsed leases on each pick)
    {prefix}:owned:{owner}          set: the sessions an owner holds (its load)
    {prefix}:session-owner:{id}     the owner of a session
    {prefix}:inbox:{owner}          stream: inputs for the owner's sessions, posted by API instances
    {prefix}:idempotency:{id}:{key} hash: a message posted with `Idempotency-Key: {key}`: what
                                    it asked (fingerprint), which request holds it, and once
                                    recorded, its answer; it lives as long as the session
"""


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{session_id}"

    def lease(self, owner: str) -> str:
        return f"{self.prefix}:owner:{owner}"

    def owners(self) -> str:
        return f"{self.prefix}:owners"

    def owned(self, owner: str) -> str:
        return f"{self.prefix}:owned:{owner}"

    def owner_of(self, session_id: str) -> str:
        return f"{self.prefix}:session-owner:{session_id}"

    def inbox(self, owner: str) -> str:
        return f"{self.prefix}:inbox:{owner}"

    def idempotency(self, session_id: str, key: str) -> str:
        return f"{self.prefix}:idempotency:{session_id}:{key}"

    def for_scripts(self) -> tuple[str, ...]:
        """What the registry's Lua scripts build keys from, as their first five arguments: the
        owners set, and the part before the owner or session of the four per-owner or
        per-session keys (a script learns most owners as it runs)."""
        return (self.owners(), self.lease(""), self.owned(""), self.owner_of(""), self.inbox(""))
