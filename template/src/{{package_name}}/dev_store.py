"""The local cluster's store: the Redis at REDIS_URL when set, else an embedded one."""

import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import redis

from .cluster import ClusterError


@contextmanager
def embedded_store() -> Iterator[str]:
    """A Redis-protocol server in this process, for development and tests only."""
    from fakeredis import TcpFakeServer  # a development dependency, never used in production

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()


def check_reachable(url: str) -> None:
    """Say which store cannot be reached, and why, before any instance waits on it."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        where = store_address(url)
        raise ClusterError(f"the store at {where} cannot be reached: {error}") from None
    finally:
        client.close()


def store_address(url: str) -> str:
    """host:port of a store URL, without its password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def shared_store(stack: ExitStack, config: Mapping[str, str | None]) -> str:
    """The store every instance of the cluster shares; its URL."""
    url = config.get("REDIS_URL") or config.get("KV_URL")
    if url:
        check_reachable(url)
        print(f"Store: REDIS_URL ({store_address(url)})")
        return url
    if config.get("APP_ENV") == "production":
        raise ClusterError("set REDIS_URL; the embedded store is for development only")
    print("Store: embedded (development only)")
    return stack.enter_context(embedded_store())
