"""StoreBackend: the few Redis operations the session store needs, behind one small interface.

Every write is a Lua script, so it is atomic and takes one round trip, over TCP or over a REST
API alike. Connection failures surface as StoreUnavailable, never as a silent fallback.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

# (entry id, fields) pairs, as XREAD returns them.
StreamEntries = list[tuple[str, dict[str, str]]]


class StoreUnavailable(Exception):
    """The store cannot be reached; the request changed nothing."""


@dataclass(frozen=True)
class LuaScript:
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324 - Redis names scripts by SHA-1


class StoreBackend(Protocol):
    async def run(self, script: LuaScript, keys: list[str], args: list[str]) -> Any: ...

    async def read_stream(self, key: str, after: str, block_ms: int) -> StreamEntries: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisBackend:
    """Redis protocol over TCP (Redis, Valkey, Upstash, Render Key Value...)."""

    def __init__(self, url: str) -> None:
        # Short timeouts: a store that does not answer is reported (503), not waited for.
        self._redis = redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )

    async def run(self, script: LuaScript, keys: list[str], args: list[str]) -> Any:
        try:
            try:
                return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self._redis.eval(script.source, len(keys), *keys, *args)
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
