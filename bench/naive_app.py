"""The store users would write instead: the generated app on a naive Redis store, as seed 002
keeps sessions: GET the session's JSON, SET it back.

Everything but storage is the generated project's own code, as in inmemory_app.py. The store
has no compare-and-set (of two concurrent writes, the later silently wins), no event stream, no
tombstone, and hands out no seed, so requests carry none; it is one key per session and one
plain command per store call. The bench measures it to show what the guarantees cost against
the design people reach for first.

Served by the latency bench as `uvicorn naive_app:app --app-dir bench`, on REDIS_URL; the
generated package is named by BENCH_PACKAGE (default `session_app`).
"""

import importlib
import os
from typing import Any

import redis.asyncio as redis

PACKAGE = os.environ.get("BENCH_PACKAGE", "session_app")
_app_module = importlib.import_module(f"{PACKAGE}.app")
_store_module = importlib.import_module(f"{PACKAGE}.sessions.store")
_models = importlib.import_module(f"{PACKAGE}.sessions.models")
Stored = _store_module.Stored
StreamEntries = list[tuple[str, dict[str, str]]]


class NaiveRedisStore:
    """SessionStore's methods on GET and SET of the session's JSON, with none of its rules."""

    def __init__(self, url: str, prefix: str, ttl_seconds: int, limits: Any) -> None:
        self.backend = self  # what /healthz pings
        self.limits = limits
        # On a cluster, its one key per session is routed like any other.
        self._redis = (
            redis.RedisCluster.from_url(url)
            if os.environ.get("BENCH_CLUSTER")
            else redis.Redis.from_url(url)
        )
        self._prefix = prefix
        self._ttl = ttl_seconds

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:naive:{session_id}"

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    async def load(self, session_id: str) -> Any:
        doc = await self._redis.get(self._key(session_id))
        return None if doc is None else Stored(_models.Session.model_validate_json(doc), "")

    async def hydrate(self, session: Any, seed: str) -> Any:
        # The bench resets its session with a seed; a naive app would simply take it.
        await self._redis.set(
            self._key(session.session_id), session.model_dump_json(), ex=self._ttl
        )
        return Stored(session, "")

    async def write(
        self, session: Any, seed: str, *, expected_rev: int, events: list[dict[str, object]]
    ) -> None:
        await self._redis.set(
            self._key(session.session_id), session.model_dump_json(), ex=self._ttl
        )

    # The streamed reply: a naive app keeps the message in memory while the provider answers
    # and SETs the session once, with the reply; no lease, no events, no kept answers.
    async def kept_answer(self, session_id: str, idempotency_key: str) -> None:
        return None

    async def ask(self, session: Any, seed: str, **options: Any) -> None:
        return None

    async def stream_delta(self, session_id: str, *args: Any, **options: Any) -> None:
        return None

    async def answer(self, session: Any, seed: str, **options: Any) -> None:
        await self._redis.set(
            self._key(session.session_id), session.model_dump_json(), ex=self._ttl
        )

    async def abandon(self, session_id: str, lease_token: str) -> None:
        return None

    async def reply_streaming(self, session_id: str) -> bool:
        return False

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(self._key(session_id))

    async def read_events(self, session_id: str, after: str, block_ms: int) -> StreamEntries:
        return []


class NoSeeds:
    """The app's codec, except that it hands out no seed: reads verify one if a client sends it."""

    def __init__(self, codec: Any) -> None:
        self._codec = codec

    def encode(self, session: Any) -> None:
        return None

    def decode(self, seed: str, session_id: str) -> Any:
        return self._codec.decode(seed, session_id)


app = _app_module.create_app()
_settings = app.state.settings
app.state.store = NaiveRedisStore(
    os.environ["REDIS_URL"],
    _settings.key_prefix,
    _settings.session_ttl_seconds,
    _settings.session_limits,
)
app.state.codec = NoSeeds(app.state.codec)
