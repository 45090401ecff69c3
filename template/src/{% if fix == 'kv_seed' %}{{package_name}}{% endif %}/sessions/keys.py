"""KeyLayout: the name of every key this app keeps in the shared store, built here alone.

Under the app's key prefix (which never holds braces), every key of one session carries the
session id in braces, its Redis Cluster hash tag: all of them live in one hash slot, so a script
that touches several of them runs on one node of a cluster.
    <prefix>:session:{<id>}  hash: rev, seed (the seed issued with that rev: the session
                             itself, compressed and sealed) and tag (the seed's fingerprint);
                             or rev and doc (the session as JSON) when its seed would exceed
                             SEED_MAX_BYTES; awaiting while a reply streams; or, after DELETE,
                             only `deleted`, kept as long as a seed could live, so that no old
                             seed can bring a deleted session back
    <prefix>:events:{<id>}   stream: one entry per event, read by every instance's SSE streams;
                             each script that adds to it also PUBLISHes its name (cluster
                             stream readers subscribe to `events("*")`)
    <prefix>:answer:{<id>}:<idempotency key>
                             string: the first answer to a POST .../messages that carried this
                             Idempotency-Key, with a hash of its request; kept as long as the
                             session
    <prefix>:reply:{<id>}    string: the lease of the instance streaming the session's reply (a
                             token, expiring unless renewed); gone while no reply streams
Before 0.4.0 the id had no braces; `legacy_session` and `legacy_events` name those keys, which
sessions created before the update still use until they are first missed (store.py).
"""


def hash_tag(session_id: str) -> str:
    """The session id in braces: Redis Cluster hashes only that part of a key that holds it."""
    return "{" + session_id + "}"


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{hash_tag(session_id)}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{hash_tag(session_id)}"

    def legacy_session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def legacy_events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{session_id}"

    def answer(self, session_id: str, idempotency_key: str) -> str:
        return f"{self.prefix}:answer:{hash_tag(session_id)}:{idempotency_key}"

    def reply_lease(self, session_id: str) -> str:
        return f"{self.prefix}:reply:{hash_tag(session_id)}"
