"""StoreBackend: the few Redis operations the session store needs, behind one small interface.

Every store operation is a Lua script, so it is atomic and takes one round trip, over TCP or
over a REST API alike. Scripts are sent with EVAL each time: the server caches the compiled
script by its hash, and one command (rather than EVALSHA, NOSCRIPT, EVAL) keeps the backends
stateless and works on every Redis-protocol server (and a flushed script cache, NOSCRIPT, can
never happen). Every store failure surfaces as StoreUnavailable (`store_error`), never as a
silent fallback or a bare 500.
"""

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.typing import EncodableT, KeyT, StreamIdT

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


# Entries one read takes from one stream; a stream with more is read again at once.
STREAM_PAGE = 100


def xread(key: str, after: str, block_ms: int | None = None) -> list[EncodableT]:
    """The XREAD command of one stream's entries after `after` (waiting up to `block_ms`)."""
    block: list[EncodableT] = [] if block_ms is None else ["BLOCK", block_ms]
    return ["XREAD", "COUNT", STREAM_PAGE, *block, "STREAMS", key, after]


class StoreUnavailable(ClientError):
    """The store refused or cannot be reached; the request changed nothing. The message (for
    the log) says why."""

    code = "store_unavailable"


class StoreOutcomeUnknown(StoreUnavailable):
    """The connection was lost after a write was sent: the store may have applied it."""


class StreamsLost(StoreUnavailable):
    """Some streams could not be read (a cluster node that holds them failed); `entries` are
    those of the streams that could."""

    def __init__(self, reason: str, entries: "StreamsEntries", lost: frozenset[str]) -> None:
        super().__init__(reason)
        self.entries = entries
        self.lost = lost


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

    @property
    def clustered(self) -> bool:
        """Keys in different hash slots may live on different nodes: a script names one slot."""
        ...

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


class CommandConnections:
    """The instance's command connections to one Redis server: at most `size` in use at once,
    idle ones reused; a command waits up to CONNECTION_WAIT for one to come free (then 503).

    redis-py's connections, kept here rather than in its pool and client: around each command
    those take a lock, a condition, a retry wrapper and metrics hooks, which measured 25 µs more
    CPU per script round trip (bench/README.md), and every store operation is one.
    """

    def __init__(self, url: str, *, size: int, client_name: str | None) -> None:
        # Short timeouts: a store that does not answer is reported (503), not waited for. A
        # connection idle for a while is pinged before use. No connection ever resends a
        # command itself: only `_attempt` does, for commands that are safe to run twice.
        self._factory = redis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=5,
            client_name=client_name,
            retry=Retry(NoBackoff(), 0),
        )
        # Made unconnected, each connecting on first use; the most recently used is taken first,
        # so a quiet instance keeps few open. An empty queue: all `size` are in use.
        self._all = tuple(self._factory.make_connection() for _ in range(size))
        self._idle: asyncio.LifoQueue[AbstractConnection] = asyncio.LifoQueue()
        for connection in self._all:
            self._idle.put_nowait(connection)

    async def execute(self, *command: EncodableT) -> Any:
        """One command's reply, raised as redis-py raises it when the server refuses it."""
        try:
            connection = self._idle.get_nowait()
        except asyncio.QueueEmpty:
            try:
                async with asyncio.timeout(CONNECTION_WAIT):
                    connection = await self._idle.get()
            except TimeoutError:
                raise StoreUnavailable("every store connection stayed busy") from None
        try:
            await _ready(connection)
            await connection.send_command(*command)
            return await connection.read_response()
        except redis_errors.ResponseError:
            raise  # the server's answer, read whole: the connection stays usable
        except BaseException:
            # Lost, timed out or cancelled mid-reply: its next use connects anew.
            await connection.disconnect(nowait=True)
            raise
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self._all:
            await connection.disconnect()


async def _ready(connection: AbstractConnection) -> None:
    """Connected, with nothing waiting to be read. Data or an end of file on an idle connection
    means the server closed it (a restart, a failover) or a reply was left unread: replaced
    before anything is sent on it, so even a command that is never retried goes out whole."""
    if not connection.is_connected:
        await connection.connect()
    try:
        stale = await connection.can_read()
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError):
        stale = True
    if stale:
        await connection.disconnect()
        await connection.connect()


class RedisBackend:
    """Redis protocol over TCP (Redis, Valkey, Upstash, Render Key Value...).

    At most `max_connections` connections for commands, plus one for the stream reader: a
    request waits briefly for a free connection rather than opening more.
    """

    clustered = False

    def __init__(
        self, url: str, *, client_name: str | None = None, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self.address = host_of(url)
        self._url = url
        # Named, so `CLIENT LIST` shows which instance holds which connections.
        self._client_name = client_name and re.sub(r"[^!-~]", "-", client_name)
        self._commands = CommandConnections(
            url, size=max_connections, client_name=self._client_name
        )
        # A lost connection (a store restart, a failover) is retried on a new one, briefly.
        self._retry = Retry(ExponentialBackoff(cap=0.25, base=0.02), 3)

    async def _attempt(self, command: Callable[[], Awaitable[T]], effect: Effect) -> T:
        async def forget_connection(error: Exception) -> None:
            pass  # CommandConnections already dropped the broken connection

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
            lambda: self._commands.execute("EVAL", script, len(keys), *keys, *args), effect
        )

    async def read_stream(self, key: str, after: str, block_ms: int | None) -> StreamEntries:
        command = xread(key, after, block_ms)
        reply = await self._attempt(lambda: self._commands.execute(*command), Effect.READ)
        return [entry for _, entries in stream_replies(reply) for entry in entries]

    def stream_reader(self) -> "RedisStreamReader":
        return RedisStreamReader(self._url, self._client_name, commands=self._commands)

    async def ping(self) -> None:
        await self._attempt(lambda: self._commands.execute("PING"), Effect.READ)

    async def close(self) -> None:
        await self._commands.close()


def stream_replies(reply: Any) -> StreamsEntries:
    """XREAD's reply as it comes off the wire, as (key, [(id, fields)]) pairs: none, or per
    stream its entries, [id, [field, value...]], by key (RESP3) or in [key, entries] (RESP2)."""
    streams = reply.items() if isinstance(reply, dict) else reply or []
    return [
        (key, [(entry_id, _fields(flat)) for entry_id, flat in entries]) for key, entries in streams
    ]


def _fields(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisStreamReader:
    """XREAD BLOCK on many streams over one connection; `wake()` ends the wait early with
    CLIENT UNBLOCK, sent over a command connection, so the reader names new streams at once."""

    def __init__(self, url: str, client_name: str | None, *, commands: CommandConnections) -> None:
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
                reply = await self._redis.xread(streams, count=STREAM_PAGE, block=block)
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
            return bool(await self._commands.execute("CLIENT", "UNBLOCK", self._client_id))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, StoreUnavailable):
            return False  # the read ends by its own timeout

    async def close(self) -> None:
        await self._redis.aclose()


# What a read on a cluster tries again: a lost connection, and what the client says while a
# slot changes hands (CLUSTERDOWN, TRYAGAIN, or RedisClusterException, not a RedisError, when
# it cannot relearn the slots). The pauses between tries (seconds).
RETRIED = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
)
RETRY_PAUSES = (0.02, 0.08, 0.25)
# A cluster's health check asks up to this many times (each with the retries above).
PING_ROUNDS = 3


class RedisClusterBackend:
    """Redis Cluster or Valkey cluster (ElastiCache/MemoryDB in cluster mode, Redis Cloud...).

    The client learns which node serves which hash slot and follows MOVED and ASK itself; every
    key a script names shares one slot (keys.py), so each script runs on one node. At most
    `max_connections` - 1 commands are under way at once, so each node gets at most
    `max_connections` connections (with the one the client learns the slots on), and a
    request waits briefly for its turn rather than opening more.
    """

    clustered = True

    def __init__(
        self,
        url: str,
        *,
        stream_notices: str,
        client_name: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.address = host_of(url)
        self.stream_notices = stream_notices
        self._url = url
        self._client_name = client_name and re.sub(r"[^!-~]", "-", client_name)
        # As RedisBackend: short timeouts, idle connections pinged before use, and no resend by
        # the client itself (it would resend a write whose reply was lost): `_attempt` decides.
        # Slots left uncovered by a dead master fail alone; the others keep being served.
        self._redis = RedisCluster.from_url(
            url,
            max_connections=max_connections,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=5,
            client_name=self._client_name,
            require_full_coverage=False,
            retry=Retry(NoBackoff(), 0),
        )
        # One connection of the budget is the one the client learns the slots on (it keeps it, to
        # the node in REDIS_URL), so commands take the others.
        self._turns = asyncio.Semaphore(max(1, max_connections - 1))
        self._learning = asyncio.Lock()

    async def _attempt(self, command: Callable[[], Awaitable[T]], effect: Effect) -> T:
        try:
            if effect is Effect.WRITE:
                return await self._in_turn(command)
            # A failover moves a slot to a replica within seconds; a read retries only
            # briefly, so a request gets its 503 (and Retry-After) rather than waiting for the
            # election. The client relearns the slots before each new try.
            for pause in RETRY_PAUSES:
                with contextlib.suppress(*RETRIED):
                    return await self._in_turn(command)
                await asyncio.sleep(pause)
            return await self._in_turn(command)
        except TimeoutError as exc:
            raise StoreUnavailable("every store connection stayed busy") from exc
        except redis_errors.RedisClusterException as exc:
            # Raised by the client before it sends anything: the command was never run.
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except (redis_errors.RedisError, OSError) as exc:
            raise store_error(exc, effect) from exc

    async def _in_turn(self, command: Callable[[], Awaitable[T]]) -> T:
        async with asyncio.timeout(CONNECTION_WAIT):
            await self._turns.acquire()
        try:
            # The client learns the slots on first use and after a lost connection; asked by
            # several commands at once, it can drop the connections the others are opening.
            # So one learns while the others wait (a no-op once it knows them).
            async with self._learning:
                await self._redis.initialize()
            return await command()
        finally:
            self._turns.release()

    async def run(
        self, script: str, keys: list[str], args: list[str], *, effect: Effect = Effect.WRITE
    ) -> Any:
        return await self._attempt(
            lambda: self._redis.eval(script, len(keys), *keys, *args), effect
        )

    def _xread(self, client: Any, key: str, after: str, block_ms: int | None = None) -> Any:
        """XREAD of one stream, sent straight to the node that serves its slot. Left to itself,
        the cluster client asks its default node which keys an XREAD names (`COMMAND GETKEYS`),
        so with that node dead every read would fail, whatever its slot."""
        node = self._redis.get_node_from_key(key)
        return client.execute_command(*xread(key, after, block_ms), target_nodes=node)

    async def read_stream(self, key: str, after: str, block_ms: int | None) -> StreamEntries:
        reply = await self._attempt(
            lambda: self._xread(self._redis, key, after, block_ms), Effect.READ
        )
        streams = cast("list[tuple[str, StreamEntries]]", reply or [])
        return [entry for _, entries in streams for entry in entries]

    async def read_streams(self, positions: Mapping[str, str]) -> StreamsEntries:
        """Each stream's entries after its position, without waiting: one XREAD per stream (a
        read cannot name keys in two slots), sent in one pipeline, one round trip per node."""

        async def read_all() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, after in positions.items():
                    self._xread(pipe, key, after)
                return await pipe.execute()

        try:
            replies = await self._attempt(read_all, Effect.READ)
        except StoreUnavailable as failed:
            # One failed node fails the whole pipeline: read each stream alone, so that only the
            # streams in that node's slots are lost, as in every other request.
            return await self._read_each(positions, failed)
        return [stream for reply in replies for stream in cast("StreamsEntries", reply or [])]

    async def _read_each(
        self, positions: Mapping[str, str], failed: StoreUnavailable
    ) -> StreamsEntries:
        keys = list(positions)

        def read_one(key: str) -> Callable[[], Awaitable[Any]]:
            return lambda: self._xread(self._redis, key, positions[key])

        results = await asyncio.gather(
            *(self._attempt(read_one(key), Effect.READ) for key in keys), return_exceptions=True
        )
        entries: StreamsEntries = []
        lost: set[str] = set()
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, StoreUnavailable):
                lost.add(key)
            elif isinstance(result, BaseException):
                raise result
            else:
                entries += cast("StreamsEntries", result or [])
        # Even when every stream read failed, only those streams end: the others of the
        # instance were not read, and a store that is down altogether fails the subscription.
        if lost:
            raise StreamsLost(str(failed), entries, frozenset(lost))
        return entries

    def stream_reader(self) -> "ClusterStreamReader":
        return ClusterStreamReader(self)

    async def subscriber(self) -> redis.Redis:
        """A client of one node, any (a classic PUBLISH reaches every node), for a subscription."""
        await self._attempt(self._redis.initialize, Effect.READ)
        node = self._redis.get_random_node()
        parts = urlsplit(self._url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        node_url = urlunsplit(parts._replace(netloc=f"{netloc}{node.host}:{node.port}"))
        # No silent reconnection: a new connection would miss the notifications in between.
        return redis.Redis.from_url(
            node_url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=None,
            health_check_interval=5,
            client_name=self._client_name,
            retry=Retry(NoBackoff(), 0),
        )

    async def ping(self) -> None:
        # Any node, not every master: while one master fails over, only its own sessions get
        # 503; /healthz stays 200, so no health check pulls every instance out of service. A
        # dead node picked at random, or asked while the client relearns the slots, is not the
        # cluster down: other nodes are asked before the check fails.
        for _ in range(PING_ROUNDS - 1):
            with contextlib.suppress(StoreUnavailable):
                await self._attempt(
                    lambda: self._redis.ping(target_nodes=RedisCluster.RANDOM), Effect.READ
                )
                return
        await self._attempt(lambda: self._redis.ping(target_nodes=RedisCluster.RANDOM), Effect.READ)

    async def close(self) -> None:
        await self._redis.aclose()


class ClusterStreamReader:
    """Many streams on a cluster, on one subscription connection whatever their number.

    Every script that adds to a stream also PUBLISHes the stream's name (a classic PUBLISH
    reaches every node of a cluster), so one pattern subscription, on any node, hears of every
    new entry. A read then takes only the streams it heard of (and the ones newly named, which
    may have had entries before it listened), each with its own XREAD, one pipeline per read.
    """

    def __init__(self, backend: RedisClusterBackend) -> None:
        self._backend = backend
        self._subscriber: redis.Redis | None = None
        self._listening: asyncio.Task[None] | None = None
        # Streams with entries not read yet, and those named by the previous read (immutable:
        # replaced, never changed in place, so no read sees a set change under it).
        self._heard: frozenset[str] = frozenset()
        self._named: frozenset[str] = frozenset()
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._blocked = False

    async def read(self, positions: Mapping[str, str], block_ms: int) -> StreamsEntries:
        try:
            if self._listening is None:
                await self._subscribe()
                self._heard |= set(positions)  # anything before the subscription went unheard
            self._heard |= positions.keys() - self._named
            self._named = frozenset(positions)
            self._ready.clear()
            if block_ms > 0 and not self._heard & self._named and self._failure is None:
                self._blocked = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_ms / 1000):
                        await self._ready.wait()
            if self._failure is not None:
                raise self._failure
            due = {key: positions[key] for key in self._heard & self._named}
            self._heard = frozenset()
            replies = await self._backend.read_streams(due) if due else []
        except StreamsLost as lost:
            # Streams on the other nodes were read: the subscription stays.
            self._heard |= {key for key, entries in lost.entries if len(entries) >= STREAM_PAGE}
            raise
        except (redis_errors.RedisError, OSError, StoreUnavailable) as exc:
            await self._unsubscribe()
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(str(exc) or "the store did not answer") from exc
        finally:
            self._blocked = False
        # A full page may not be all: read that stream again next time.
        self._heard |= {key for key, entries in replies if len(entries) >= STREAM_PAGE}
        return replies

    async def _subscribe(self) -> None:
        self._failure = None
        self._subscriber = await self._backend.subscriber()
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(self._backend.stream_notices)
        self._listening = asyncio.create_task(self._listen(pubsub), name="stream-notices")

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._heard |= {message["channel"]}
                    self._ready.set()
        except (redis_errors.RedisError, OSError) as exc:
            self._failure = exc
            self._ready.set()
        finally:
            await pubsub.aclose()

    async def _unsubscribe(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
        if self._subscriber is not None:
            await self._subscriber.aclose()
            self._subscriber = None
        self._named = frozenset()

    async def wake(self) -> bool:
        if not self._blocked:
            return False
        self._ready.set()
        return True

    async def close(self) -> None:
        await self._unsubscribe()


def open_redis_backend(
    url: str,
    *,
    cluster: bool | None,
    stream_notices: str,
    client_name: str | None = None,
    max_connections: int = MAX_CONNECTIONS,
) -> StoreBackend:
    """The backend for a Redis URL: a cluster client on a cluster, else a single-Redis one.

    `cluster` (REDIS_CLUSTER) decides when set; otherwise the first command asks the node
    (`INFO cluster`), so an app that starts while its store is down still picks the right client
    once it is up. `stream_notices` is the channel pattern the write scripts publish stream
    names on.
    """
    if cluster is False:
        return RedisBackend(url, client_name=client_name, max_connections=max_connections)
    if cluster is True:
        return RedisClusterBackend(
            url,
            stream_notices=stream_notices,
            client_name=client_name,
            max_connections=max_connections,
        )
    return DetectedRedisBackend(
        url,
        stream_notices=stream_notices,
        client_name=client_name,
        max_connections=max_connections,
    )


class DetectedRedisBackend:
    """A single Redis or a cluster, whichever the URL's node says it is, asked once."""

    def __init__(
        self, url: str, *, stream_notices: str, client_name: str | None, max_connections: int
    ) -> None:
        self.address = host_of(url)
        self._url = url
        self._stream_notices = stream_notices
        self._client_name = client_name
        self._max_connections = max_connections
        self._chosen: RedisBackend | RedisClusterBackend | None = None
        self._asking = asyncio.Lock()

    @property
    def clustered(self) -> bool:
        return self._chosen is not None and self._chosen.clustered

    async def chosen(self) -> "RedisBackend | RedisClusterBackend":
        if self._chosen is not None:
            return self._chosen
        async with self._asking:
            if self._chosen is None:
                self._chosen = self._open(on_cluster=await is_cluster_node(self._url))
        return self._chosen

    def _open(self, *, on_cluster: bool) -> "RedisBackend | RedisClusterBackend":
        name, connections = self._client_name, self._max_connections
        if not on_cluster:
            return RedisBackend(self._url, client_name=name, max_connections=connections)
        try:
            return RedisClusterBackend(
                self._url,
                stream_notices=self._stream_notices,
                client_name=name,
                max_connections=connections,
            )
        except redis_errors.RedisClusterException as exc:
            # A database number other than 0, say: a cluster has only one database.
            raise StoreUnavailable(f"REDIS_URL names a Redis Cluster node: {exc}") from exc

    async def run(
        self, script: str, keys: list[str], args: list[str], *, effect: Effect = Effect.WRITE
    ) -> Any:
        return await (await self.chosen()).run(script, keys, args, effect=effect)

    async def read_stream(self, key: str, after: str, block_ms: int | None) -> StreamEntries:
        return await (await self.chosen()).read_stream(key, after, block_ms)

    def stream_reader(self) -> "DetectedStreamReader":
        return DetectedStreamReader(self)

    async def ping(self) -> None:
        await (await self.chosen()).ping()

    async def close(self) -> None:
        if self._chosen is not None:
            await self._chosen.close()


class DetectedStreamReader:
    """The chosen backend's stream reader, made at the first read."""

    def __init__(self, backend: DetectedRedisBackend) -> None:
        self._backend = backend
        self._reader: StreamReader | None = None

    async def read(self, positions: Mapping[str, str], block_ms: int) -> StreamsEntries:
        if self._reader is None:
            self._reader = (await self._backend.chosen()).stream_reader()
        return await self._reader.read(positions, block_ms)

    async def wake(self) -> bool:
        return self._reader is not None and await self._reader.wake()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()


async def is_cluster_node(url: str) -> bool:
    """Whether the node at `url` is part of a cluster; StoreUnavailable when it cannot be asked.
    A node that refuses INFO (some proxies) is taken for a single Redis."""
    probe = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        info = await probe.info("cluster")
    except redis_errors.ResponseError:
        return False
    except (redis_errors.RedisError, OSError) as exc:
        raise store_error(exc, Effect.READ) from exc
    finally:
        await probe.aclose()
    return bool(info.get("cluster_enabled"))


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
