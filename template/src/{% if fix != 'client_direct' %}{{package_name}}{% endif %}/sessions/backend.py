"""StoreBackend: the few Redis operations the session store needs, behind one small interface.

Every store operation is a Lua script, so it is atomic and takes one round trip, over TCP or
over a REST API alike. Scripts are sent with EVAL each time: the server caches the compiled
script by its hash, and one command (rather than EVALSHA, NOSCRIPT, EVAL) keeps the backends
stateless and works on every Redis-protocol server. Connection failures surface as
StoreUnavailable, never as a silent fallback.
"""

import logging
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ClientError

log = logging.getLogger(__name__)
# (entry id, fields) pairs, as XREAD returns them.
StreamEntries = list[tuple[str, dict[str, str]]]


class StoreUnavailable(ClientError):
    """The store cannot be reached; the request changed nothing. The message says why."""

    code = "store_unavailable"


class StoreBackend(Protocol):
    # Where the store is (host and port, never credentials), for log lines and /healthz.
    address: str

    async def run(self, script: str, keys: list[str], args: list[str]) -> Any: ...

    async def read_stream(self, key: str, after: str, block_ms: int) -> StreamEntries: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisBackend:
    """Redis protocol over TCP (Redis, Valkey, Upstash, Render Key Value...)."""

    def __init__(self, url: str) -> None:
        self.address = host_of(url)
        # Short timeouts: a store that does not answer is reported (503), not waited for.
        self._redis = redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )

    async def run(self, script: str, keys: list[str], args: list[str]) -> Any:
        try:
            return await self._redis.eval(script, len(keys), *keys, *args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def read_stream(self, key: str, after: str, block_ms: int) -> StreamEntries:
        try:
            reply = await self._redis.xread({key: after}, count=100, block=block_ms)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        streams = cast("list[tuple[str, StreamEntries]]", reply)
        return [entry for _, entries in streams for entry in entries]

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()


def host_of(url: str) -> str:
    """The host (and port) of a store URL, without the user name or password it may carry."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


async def check_reachable(backend: StoreBackend) -> None:
    """Ping once at startup: an unreachable store is named in one log line. The app still
    starts, answering 503 until the store is back, so one slow store cannot stop a deploy."""
    try:
        await backend.ping()
    except StoreUnavailable as error:
        log.error(
            "session store at %s is unreachable (%s); requests get 503 %s until it is back",
            backend.address,
            error,
            StoreUnavailable.code,
        )
