"""KeyLayout: the name of every key this app keeps in the shared store, built here alone.

Under the app's key prefix:
    {prefix}:session:{id}  hash: rev, doc (the session as JSON), seed (the seed of that rev);
                           or, after DELETE, only `deleted`, kept as long as a seed could live,
                           so that no old seed can bring a deleted session back
    {prefix}:events:{id}   stream: one entry per event, read by every instance's SSE streams
    {prefix}:answer:{id}:{idempotency key}
                           string: the first answer to a POST .../messages that carried this
                           Idempotency-Key, with a hash of its request; kept as long as the session
"""


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{session_id}"

    def answer(self, session_id: str, idempotency_key: str) -> str:
        return f"{self.prefix}:answer:{session_id}:{idempotency_key}"
