"""Client-direct: what minting a token costs, through a real uvicorn process.

* latency: POST /api/sessions (the local provider: a random session id, two signed tokens, and
  two store round trips: the rate limits counted, the refresh chain started) against
  GET /healthz on the same instance (one store round trip, a PING). Measured in
  interleaved batches on one warm keep-alive connection (a sequential httpx client), the order
  alternating every round so drift on a noisy machine hits both alike. Target: mint p50 /
  healthz p50 <= 1.2.
* throughput: sessions minted per second on one connection, one request at a time. (With
  several requests in flight, the Python client on the same small machine, not the server,
  would set the pace.)
* memory: the API's resident set size (VmRSS) after 10 sessions and after 10,000, on a fresh
  process: equal within 5 % if the API keeps nothing per session (its refresh chains are in
  the store).

The instance is started as the generated project's cluster starts it (`cluster.start_instance`:
`python -m uvicorn <package>.main:app --no-access-log`, uvloop and httptools from
uvicorn[standard]), on the Redis at REDIS_URL, under a key prefix of its own that it deletes
afterwards, with rate limits high enough never to refuse. Only 127.0.0.1 and that Redis are
contacted; every loop is bounded.

Run it with the generated project's interpreter (Linux: memory is read from /proc):

    REDIS_URL=redis://localhost:6379/0 ../bench-cd/.venv/bin/python bench/client_direct.py \
        --package session_app
"""

import argparse
import gc
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

LATENCY_TARGET = 1.20  # mint p50 / healthz p50
MEMORY_TOLERANCE = 0.05  # |RSS after 10,000 / RSS after 10 - 1|


class BenchError(Exception):
    """A request failed or the setup is wrong; the figures would mean nothing."""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError("no VmRSS in /proc: this benchmark needs Linux")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(request: Callable[[], httpx.Response], status: int) -> float:
    started = time.perf_counter_ns()
    response = request()
    elapsed = time.perf_counter_ns() - started
    if response.status_code != status:
        raise BenchError(f"HTTP {response.status_code}: {response.text[:300]}")
    return elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", default="session_app", help="the generated package")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=300, help="requests per batch")
    parser.add_argument("--warmup", type=int, default=500, help="untimed requests per kind")
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions for memory")
    args = parser.parse_args(argv)

    cluster = importlib.import_module(f"{args.package}.cluster")
    key = subprocess.run(  # noqa: S603 - our interpreter, our package's keygen
        [sys.executable, "-m", args.package, "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise BenchError("set REDIS_URL: the API counts rate limits and keeps refresh chains there")
    prefix = f"bench-{os.getpid()}"
    env = {
        "SESSION_KEYS": key,
        "UPSTREAM_PROVIDER": "local",
        "APP_ENV": "development",
        "REDIS_URL": redis_url,
        "KEY_PREFIX": prefix,
        # What is measured is minting, not refusing.
        "SESSION_CREATE_RATE": "1000/second",
        "MINT_RATE_PER_CLIENT": "1000/second",
        "MINT_RATE_GLOBAL": "1000/second",
    }
    names = ("uvicorn", "uvloop", "httptools", "httpx", "itsdangerous", "fastapi")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"Machine: Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load}; "
        + ", ".join(f"{name} {version(name)}" for name in names)
    )

    with tempfile.TemporaryDirectory(prefix="sessionfix-bench-") as workdir:
        results: dict[str, Any] = {}
        # Memory first, on a fresh process that has minted nothing else.
        instance = cluster.start_instance("bench-memory", cluster.free_port(), env, cwd=workdir)
        try:
            cluster.wait_healthy([instance])
            pid = instance.process.pid
            with httpx.Client(base_url=instance.url, timeout=10) as client:
                readings: list[tuple[int, int]] = []
                minted = 0
                for checkpoint in (10, 100, 1_000, args.sessions):
                    while minted < checkpoint:
                        if client.post("/api/sessions").status_code != 201:
                            raise BenchError("mint failed")
                        minted += 1
                    time.sleep(0.5)  # let the process settle before reading its RSS
                    readings.append((minted, rss_kib(pid)))
            results["memory"] = readings
        finally:
            instance.stop()

        instance = cluster.start_instance("bench-latency", cluster.free_port(), env, cwd=workdir)
        try:
            cluster.wait_healthy([instance])
            with httpx.Client(base_url=instance.url, timeout=10) as client:

                def mint() -> httpx.Response:
                    return client.post("/api/sessions")

                def health() -> httpx.Response:
                    return client.get("/healthz")

                kinds: dict[str, tuple[Callable[[], httpx.Response], int]] = {
                    "POST /api/sessions": (mint, 201),
                    "GET /healthz": (health, 200),
                }
                for request, status in kinds.values():
                    for _ in range(args.warmup):
                        timed(request, status)
                batches: dict[str, list[list[float]]] = {name: [] for name in kinds}
                started = time.perf_counter()
                for round_number in range(args.rounds):
                    order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
                    for name in order:
                        request, status = kinds[name]
                        gc.collect()
                        gc.disable()
                        try:
                            batches[name].append(
                                [timed(request, status) for _ in range(args.per_round)]
                            )
                        finally:
                            gc.enable()
                results["elapsed"] = time.perf_counter() - started
                results["batches"] = batches
            sequential = args.rounds * args.per_round
            results["sequential_rate"] = sequential / sum(
                sum(batch) / 1000 for batch in batches["POST /api/sessions"]
            )
        finally:
            instance.stop()

    forget(redis_url, prefix)
    report(results, args)
    return 0


def forget(redis_url: str, prefix: str) -> None:
    """Delete every key the bench's instances wrote."""
    import redis  # the generated project's dependency, in the interpreter that runs this

    store = redis.Redis.from_url(redis_url)
    try:
        for key in store.scan_iter(f"{prefix}:*", count=1_000):
            store.delete(key)
    finally:
        store.close()


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    batches: dict[str, list[list[float]]] = results["batches"]
    print(f"\n{args.rounds} rounds x {args.per_round} requests per kind, one instance\n")
    print("| request | n | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in batches.items():
        values = [value for batch in runs for value in batch]
        print(
            f"| {name} | {len(values)} | {percentile(values, 0.5):.3f} "
            f"| {percentile(values, 0.9):.3f} | {percentile(values, 0.99):.3f} "
            f"| {statistics.fmean(values):.3f} |"
        )
    mint, health = (
        [v for batch in batches[name] for v in batch]
        for name in ("POST /api/sessions", "GET /healthz")
    )
    ratio = percentile(mint, 0.5) / percentile(health, 0.5)
    rounds = [
        percentile(a, 0.5) / percentile(b, 0.5)
        for a, b in zip(batches["POST /api/sessions"], batches["GET /healthz"], strict=True)
    ]
    verdict = "PASS" if ratio <= LATENCY_TARGET else "MISS"
    print(
        f"\nmint p50 / healthz p50: {ratio:.3f} (target <= {LATENCY_TARGET:.2f}: {verdict}); "
        f"per round: median {statistics.median(rounds):.3f}, "
        f"range {min(rounds):.3f}-{max(rounds):.3f}"
    )
    print(
        f"throughput: {results['sequential_rate']:.0f} sessions minted per second on one "
        "keep-alive connection, one request at a time"
    )
    readings: list[tuple[int, int]] = results["memory"]
    base = readings[0][1]
    print("\n| sessions minted | RSS KiB | vs after 10 |")
    print("|---:|---:|---:|")
    for minted, kib in readings:
        print(f"| {minted} | {kib} | {kib / base - 1:+.2%} |")
    change = readings[-1][1] / base - 1
    verdict = "PASS" if abs(change) <= MEMORY_TOLERANCE else "MISS"
    print(
        f"\nRSS after {readings[-1][0]} / after 10: {change:+.2%} "
        f"(target within ±{MEMORY_TOLERANCE:.0%}: {verdict})"
    )
    print(f"Load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
