"""KeyLayout: the name of every key this app keeps in the shared store, built here alone.

Under the app's key prefix:
    {prefix}:session:{id}  hash: rev, doc (the session as JSON), seed (the seed of that rev);
                           or, after DELETE, only `deleted`, kept as long as a seed could live,
                           so that no old seed can bring a deleted session back
    {prefix}:events:{id}   stream: one entry per event, read by every instance's SSE streams
"""


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:events:{session_id}"
