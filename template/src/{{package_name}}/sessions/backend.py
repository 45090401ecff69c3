"""StoreBackend: the few Redis operations the session store needs, behind one small interface.

Every store operation is a Lua script, so it is atomic and takes one round trip, over TCP or
over a REST API alike. Scripts are sent with EVAL each time: the server caches the compiled
script by its hash, and one command (rather than EVALSHA, NOSCRIPT, EVAL) keeps the backends
stateless and works on every Redis-protocol server (and a flushed script cache, NOSCRIPT, can
never happen). Every store failure surfaces as StoreUnavailable (`store_error`), never as a
silent fallback or a bare 500.
"""

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.typing import KeyT, StreamIdT

from ..errors import ClientError

log = logging.getLogger(__name__)
# (entry id, fields) pairs, as XREAD returns them.
StreamEntries = list[tuple[str, dict[str, str]]]
# (stream key, its new entries) pairs, for a read of many streams at once.
StreamsEntries = list[tuple[str, StreamEntries]]
# Redis connections an instance opens for commands; its one stream reader holds one more.
MAX_CONNECTIONS = 9
# How long a command waits for a free connection before it is a 503 (seconds): a burst of
# requests queues for the connections rather than failing.
CONNECTION_WAIT = 10


class StoreUnavailable(ClientError):
    """The store refused or cannot be reached; the request changed nothing. The message (for
    the log) says why."""

    code = "store_unavailable"


class StoreOutcomeUnknown(StoreUnavailable):
    """The connection was lost after a write was sent: the store may have applied it."""


class Effect(Enum):
    """What running a script twice would do, which decides whether a lost connection is retried
    and whether a failure may say that nothing was changed."""

    READ = "read"
    # Compare-and-set or otherwise idempotent: a second run changes nothing more.
    GUARDED_WRITE = "guarded write"
    WRITE = "write"


# Errors the server answers before it runs a command (replica, memory, script, loading,
# persistence, auth...), by the prefix the server sends; redis-py strips it from those it maps.
REFUSALS = (
    *("READONLY", "OOM", "BUSY", "LOADING", "NOSCRIPT", "MISCONF", "MASTERDOWN"),
    *("NOREPLICAS", "CLUSTERDOWN", "TRYAGAIN", "NOAUTH", "NOPERM", "WRONGPASS"),
)
_REFUSED = (
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.BusyLoadingError,
    redis_errors.NoScriptError,
    redis_errors.NoPermissionError,
    redis_errors.AuthenticationError,
    redis_errors.AuthorizationError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
)


def store_error(error: BaseException, effect: Effect) -> StoreUnavailable:
    """Any store failure as the answer a client gets; it says nothing was changed only when that
    is known: a read, a refusal, or a connection that was never made."""
    reason = f"{type(error).__name__}: {error}"
    if effect is Effect.READ or refused(error) or never_connected(error):
        return StoreUnavailable(reason)
    return StoreOutcomeUnknown(reason)


def refused(error: BaseException) -> bool:
    return isinstance(error, _REFUSED) or str(error).startswith(REFUSALS)


def never_connected(error: BaseException) -> bool:
    """Refused or unresolvable at connect time, so no command left this process."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError | socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


T = TypeVar("T")


class StoreBackend(Protocol):
    # Where the store is (host and port, never credentials), for log lines and /healthz.
    address: str

    async def run(
        self, script: str, keys: list[str], args: list[str], *, effect: Effect = Effect.WRITE
    ) -> Any: ...

    async def read_stream(self, key: str, after: str, block_ms: int | None) -> StreamEntries: ...

    def stream_reader(self) -> "StreamReader": ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class StreamReader(Protocol):
    """Reads many streams in one blocking call, on a connection of its own."""

    async def read(self, positions: Mapping[str, str], block_ms: int) -> StreamsEntries: ...

    async def wake(self) -> bool:
        """End a read that is blocked now, so the next one names new streams; False when no
        read was blocked."""
        ...

    async def close(self) -> None: ...


class RedisBackend:
    """Redis protocol over TCP (Redis, Valkey, Upstash, Render Key Value...).

    At most `max_connections` connections for commands, plus one for the stream reader: a
    request waits briefly for a free connection rather than opening more.
    """

    def __init__(
        self, url: str, *, client_name: str | None = None, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self.address = host_of(url)
        self._url = url
        # Named, so `CLIENT LIST` shows which instance holds which connections.
        self._client_name = client_name and re.sub(r"[^!-~]", "-", client_name)
        # Short timeouts: a store that does not answer is reported (503), not waited for. A
        # pooled connection idle for a while is pinged before use, so one that died with a
        # restarted store is replaced before a command is sent on it. The client itself never
        # resends a command: only `_attempt` does, for commands that are safe to run twice.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=CONNECTION_WAIT,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=5,
            client_name=self._client_name,
            retry=Retry(ExponentialBackoff(), 0),
        )
        self._redis = redis.Redis.from_pool(pool)
        # A lost connection (a store restart, a failover) is retried on a new one, briefly.
        self._retry = Retry(ExponentialBackoff(cap=0.25, base=0.02), 3)

    async def _attempt(self, command: Callable[[], Awaitable[T]], effect: Effect) -> T:
        async def forget_connection(error: Exception) -> None:
            pass  # the client already dropped the broken connection

        try:
            if effect is Effect.WRITE:
                return await command()
            return await self._retry.call_with_retry(command, forget_connection)
        except (redis_errors.RedisError, OSError) as exc:
            raise store_error(exc, effect) from exc

    async def run(
        self, script: str, keys: list[str], args: list[str], *, effect: Effect = Effect.WRITE
    ) -> Any:
        return await self._attempt(
            lambda: self._redis.eval(script, len(keys), *keys, *args), effect
        )

    async def read_stream(self, key: str, after: str, block_ms: int | None) -> StreamEntries:
        reply = await self._attempt(
            lambda: self._redis.xread({key: after}, count=100, block=block_ms), Effect.READ
        )
        streams = cast("list[tuple[str, StreamEntries]]", reply)
        return [entry for _, entries in streams for entry in entries]

    def stream_reader(self) -> "RedisStreamReader":
        return RedisStreamReader(self._url, self._client_name, commands=self._redis)

    async def ping(self) -> None:
        await self._attempt(self._redis.ping, Effect.READ)

    async def close(self) -> None:
        await self._redis.aclose()


class RedisStreamReader:
    """XREAD BLOCK on many streams over one connection; `wake()` ends the wait early with
    CLIENT UNBLOCK, sent over a command connection, so the reader names new streams at once."""

    def __init__(self, url: str, client_name: str | None, *, commands: redis.Redis) -> None:
        self._commands = commands
        # One connection, with a socket timeout longer than any wait it blocks for. No silent
        # reconnection: a new connection has a new id, which the next read asks for.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=1,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=None,
            client_name=client_name,
            retry=Retry(NoBackoff(), retries=0),
        )
        self._redis = redis.Redis.from_pool(pool)
        self._client_id: int | None = None
        self._blocked = False

    async def read(self, positions: Mapping[str, str], block_ms: int) -> StreamsEntries:
        try:
            async with asyncio.timeout(block_ms / 1000 + 5):
                if self._client_id is None:
                    self._client_id = await self._redis.client_id()
                self._blocked = block_ms > 0
                block = block_ms if block_ms > 0 else None  # BLOCK 0 would wait forever
                streams: dict[KeyT, StreamIdT] = {key: at for key, at in positions.items()}
                reply = await self._redis.xread(streams, count=100, block=block)
        except (redis_errors.RedisError, OSError, TimeoutError) as exc:
            # A new connection gets a new id: ask again before the next read.
            self._client_id = None
            raise StoreUnavailable(str(exc) or "the store did not answer") from exc
        finally:
            self._blocked = False
        return cast("StreamsEntries", reply or [])

    async def wake(self) -> bool:
        if not self._blocked or self._client_id is None:
            return False
        try:
            return bool(await self._commands.client_unblock(self._client_id))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError):
            return False  # the read ends by its own timeout

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
