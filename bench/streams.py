"""Idle event streams against the rest of an instance: GET latency with 1,000 open SSE streams
against without, and the Redis connections the instance holds.

One real uvicorn process of the generated app (KV + seed or stateful API: any fix whose events
route is `routes/events.py`), on Redis at REDIS_URL; for the stateful fix, also the development
upstream and one realtime owner, which create needs. The instance names its Redis connections
(CLIENT SETNAME), so `CLIENT LIST` counts exactly its own. Measured:

* GET /api/sessions/{id} p50/p90, sequential requests on a warm keep-alive connection, before
  the streams open and while they are open (target: with ≤ 1.5x without);
* the Redis connections the instance holds, idle and with the streams open (target ≤ 10).

Streams are spread over --sessions sessions and kept open and unread, like background tabs.
Only 127.0.0.1 is contacted; every loop is bounded.

    ../bench-app/.venv/bin/python bench/streams.py --package session_app
"""

import argparse
import asyncio
import importlib
import importlib.util
import os
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack

import httpx
import redis


async def get_latency(url: str, path: str, requests: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.get(path)  # warm the connection
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        return timings


def held(store: redis.Redis, name: str) -> int:
    return sum(1 for client in store.client_list() if client["name"] == name)


async def measure(url: str, name: str, store: redis.Redis, args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.streams + 10)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        ids = []
        for _ in range(args.sessions):
            ids.append((await client.post("/api/sessions")).json()["session_id"])
        path = f"/api/sessions/{ids[0]}"
        without = await get_latency(url, path, args.requests)
        idle_connections = held(store, name)
        async with AsyncExitStack() as stack:
            started = time.perf_counter()
            opened = await asyncio.gather(
                *(
                    client.send(
                        client.build_request("GET", f"/api/sessions/{sid}/events"), stream=True
                    )
                    for sid in (ids[n % len(ids)] for n in range(args.streams))
                )
            )
            open_seconds = time.perf_counter() - started
            for response in opened:
                stack.push_async_callback(response.aclose)
            statuses = [response.status_code for response in opened]
            with_streams = await get_latency(url, path, args.requests)
            busy_connections = held(store, name)
    p50 = statistics.median

    def p90(timings: list[float]) -> float:
        return statistics.quantiles(timings, n=10)[-1]

    print(
        f"| streams open | {statuses.count(200)} of {args.streams} answered 200 "
        f"(opened in {open_seconds:.1f} s, over {args.sessions} sessions) |"
    )
    print("\n| GET /api/sessions/{id} | p50 ms | p90 ms |\n|---|---|---|")
    print(f"| no streams | {p50(without):.2f} | {p90(without):.2f} |")
    print(f"| {args.streams} idle streams | {p50(with_streams):.2f} | {p90(with_streams):.2f} |")
    print(f"\nratio p50: {p50(with_streams) / p50(without):.2f}x (target ≤ 1.5x)")
    print("\n| Redis connections held by the instance | count |\n|---|---|")
    print(
        f"| no streams | {idle_connections} |\n| {args.streams} idle streams | {busy_connections} |"
    )
    print("(target ≤ 10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, help="the generated project's package")
    parser.add_argument("--streams", type=int, default=1_000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    cluster = importlib.import_module(f"{args.package}.cluster")
    config = importlib.import_module(f"{args.package}.config")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    name = f"bench-streams-{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        "APP_ENV": "development",
        "REDIS_URL": redis_url,
        "KEY_PREFIX": prefix,
        "SESSION_KEYS": config.new_key(),
        "MAX_STREAMS_PER_INSTANCE": str(args.streams),
    }
    with tempfile.TemporaryDirectory() as workdir:
        helpers = []
        if importlib.util.find_spec(f"{args.package}.realtime"):
            upstream_port, owner_port = cluster.free_port(), cluster.free_port()
            upstream = cluster.start_instance(
                "bench-upstream", upstream_port, env, cwd=workdir, app="dev_upstream:app"
            )
            env["UPSTREAM_URL"] = f"ws://127.0.0.1:{upstream_port}/v1/realtime"
            owner_env = {**env, "REALTIME_PUBLIC_URL": f"ws://127.0.0.1:{owner_port}"}
            owner = cluster.start_instance(
                "bench-owner", owner_port, owner_env, cwd=workdir, app="realtime"
            )
            helpers = [upstream, owner]
        instance = cluster.start_instance(name, cluster.free_port(), env, cwd=workdir)
        try:
            cluster.wait_healthy([*helpers, instance])
            asyncio.run(measure(instance.url, name, store, args))
        finally:
            for started in (instance, *helpers):
                started.stop()
            for key in store.scan_iter(f"{prefix}:*"):
                store.delete(key)


if __name__ == "__main__":
    main()
