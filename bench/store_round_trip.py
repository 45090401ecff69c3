"""What one store round trip costs the instance: a script that does nothing, sent through the
generated backend (`RedisBackend.run`, its own command connections) against the same script sent
the way the backend sent it before, through redis-py's client and blocking pool with the same
settings and the same retry wrapper. Wall time and the process's CPU time per call, p50.

Both run in one process, on one event loop (uvloop, as uvicorn[standard] runs the app), in
interleaved batches whose order alternates, so drift on a busy machine hits both.

    ../bench-app/.venv/bin/python bench/store_round_trip.py --package session_app

Only 127.0.0.1 is contacted; the script reads and writes no key.
"""

import argparse
import importlib
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
import uvloop
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

SCRIPT = "return 1"
Call = Callable[[], Awaitable[Any]]


async def timed(call: Call, count: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        await call()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus


async def measure(package: str, url: str, rounds: int, per_round: int) -> None:
    backend_module = importlib.import_module(f"{package}.sessions.backend")
    backend = backend_module.RedisBackend(url, client_name="bench-round-trip")
    read = backend_module.Effect.READ
    # The path before: redis-py's client over its blocking pool, as RedisBackend built it.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=backend_module.MAX_CONNECTIONS,
        timeout=backend_module.CONNECTION_WAIT,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=5,
        client_name="bench-round-trip",
        retry=Retry(ExponentialBackoff(), 0),
    )
    client = redis.Redis.from_pool(pool)
    key = ["bench-round-trip:{x}"]

    async def ours() -> Any:
        return await backend.run(SCRIPT, key, [], effect=read)

    async def before() -> Any:
        return await backend._attempt(lambda: client.eval(SCRIPT, 1, *key), read)

    candidates = {"redis-py client and pool (before)": before, "RedisBackend.run (now)": ours}
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in candidates}
    try:
        for call in candidates.values():
            await timed(call, per_round)  # warm-up: connections open, code paths hot
        for number in range(rounds):
            order = list(candidates.items())
            for name, call in order if number % 2 else reversed(order):
                walls, cpus = await timed(call, per_round)
                results[name][0].extend(walls)
                results[name][1].extend(cpus)
    finally:
        await backend.close()
        await client.aclose()

    print(f"{rounds} rounds x {per_round} calls each\n")
    print("| path | wall p50 µs | CPU p50 µs | CPU mean µs |")
    print("|---|---:|---:|---:|")
    for name, (walls, cpus) in results.items():
        wall, cpu, mean = (statistics.median(walls), statistics.median(cpus), statistics.mean(cpus))
        print(f"| {name} | {wall * 1e6:.1f} | {cpu * 1e6:.1f} | {mean * 1e6:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="session_app")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args()
    if not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("only a local Redis is measured")
    uvloop.run(measure(args.package, args.redis_url, args.rounds, args.per_round))


if __name__ == "__main__":
    main()
