"""StoreBackend: the few Redis operations the session store needs, behind one small interface.

Every store operation is a Lua script, so it is atomic and takes one round trip, over TCP or
over a REST API alike. Scripts are sent with EVAL each time: the server caches the compiled
script by its hash, and one command (rather than EVALSHA, NOSCRIPT, EVAL) keeps the backends
stateless and works on every Redis-protocol server (and a flushed script cache, NOSCRIPT, can
never happen). Every store failure surfaces as StoreUnavailable (`store_error`), never as a
silent fallback or a bare 500.
"""

import logging
import socket
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..errors import ClientError

log = logging.getLogger(__name__)
# (entry id, fields) pairs, as XREAD returns them.
StreamEntries = list[tuple[str, dict[str, str]]]


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

    async def read_stream(self, key: str, after: str, block_ms: int) -> StreamEntries: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisBackend:
    """Redis protocol over TCP (Redis, Valkey, Upstash, Render Key Value...)."""

    def __init__(self, url: str) -> None:
        self.address = host_of(url)
        # Short timeouts: a store that does not answer is reported (503), not waited for. A
        # pooled connection idle for a while is pinged before use, so one that died with a
        # restarted store is replaced before a command is sent on it. The client itself never
        # resends a command: only `_attempt` does, for commands that are safe to run twice.
        self._redis = redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=5,
            retry=Retry(ExponentialBackoff(), 0),
        )
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

    async def read_stream(self, key: str, after: str, block_ms: int) -> StreamEntries:
        reply = await self._attempt(
            lambda: self._redis.xread({key: after}, count=100, block=block_ms), Effect.READ
        )
        streams = cast("list[tuple[str, StreamEntries]]", reply)
        return [entry for _, entries in streams for entry in entries]

    async def ping(self) -> None:
        await self._attempt(self._redis.ping, Effect.READ)

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
