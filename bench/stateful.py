"""The stateful fix's costs, through real uvicorn processes, against the broken baseline.

* ws: a message sent on the owner's WebSocket until its *durable* reply: the assistant turn,
  which the generated realtime service sends only after both turns are written to Redis (its
  earlier `reply` event, sent before the write, is not counted), against stateful_inmemory.py,
  one process holding the same upstream connection in a dict (its assistant turn), run twice:
  as the fair baseline, which also writes each exchange's transcript to Redis once before its
  assistant turn (target: p50 ratio <= 1.2), and writing nothing (for scale). All talk to the
  same development upstream (`<package>.dev_upstream:app`).
* api: a message POSTed to an API instance until its reply arrives on an event stream held open
  on that API instance: the path a script or a second tab takes, through the owner's inbox. Its
  p50 minus the ws p50 of the same run, in Redis round trips (a PING's p50 from this process,
  measured in the same rounds). Target: <= 2. GET /healthz on the same API instance (one HTTP
  request, one Redis PING) is timed too, for scale only.
* loss: the time from SIGKILL of an owner, at a random point of its heartbeat cycle, until an
  API instance answers 410 session_owner_lost for its session, polled every 20 ms. Target:
  <= LEASE_SECONDS + 1 s.

Run with a generated stateful project's interpreter (Redis at REDIS_URL, default 127.0.0.1:6379):

    ../bench-stateful/.venv/bin/python bench/stateful.py --package session_app
"""

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

HOST = "127.0.0.1"  # the bench never contacts anything else
BENCH_DIR = Path(__file__).resolve().parent
UVICORN_OPTIONS = ("--no-access-log", "--log-level", "warning")
WS_TARGET = 1.2
API_TARGET_RTT = 2.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start(app: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **env}
    if "realtime" in app:
        env["REALTIME_PUBLIC_URL"] = f"ws://{HOST}:{port}"
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    if app.endswith(".realtime:app"):
        # The realtime service's own command (uvicorn that hands sessions over on SIGTERM).
        command = [sys.executable, "-m", app.removesuffix(":app"), "--port", str(port)]
        command += ["--host", HOST]
    # Our interpreter running our package's app: no untrusted input reaches the command.
    process = subprocess.Popen([*command, *UVICORN_OPTIONS], env=env, cwd=BENCH_DIR)  # noqa: S603
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{app} exited with {process.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{app} did not start") from None
            time.sleep(0.1)


@contextmanager
def running(*processes: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ws_round_trips(
    url: str, count: int, *, ours: bool, protocols: list[Subprotocol] | None = None
) -> list[float]:
    times = []
    async with connect(url, subprotocols=protocols) as socket_:
        if ours:
            await socket_.recv()  # ready
        for number in range(count):
            started = time.perf_counter()
            await socket_.send(json.dumps({"text": f"m{number}"}))
            # Ours relays the upstream's answer first (not yet durable), then the stored turns.
            while True:
                event = json.loads(await socket_.recv())
                if event["type"] == "turn" and event["turn"]["role"] == "assistant":
                    break
            times.append((time.perf_counter() - started) * 1000)
    return times


async def api_round_trips(api: str, count: int) -> list[float]:
    """POST a message; wait for its reply on an event stream held open on the same instance."""
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        created = (await client.post("/api/sessions")).json()
        session_id = created["session_id"]
        arrived: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

        async def listen() -> None:
            forever = httpx.Timeout(10, read=None)  # an event stream waits as long as it must
            async with httpx.AsyncClient(base_url=api, timeout=forever) as stream_client:
                path = f"/api/sessions/{session_id}/events"
                async with stream_client.stream("GET", path) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            if event["type"] == "turn" and event["turn"]["role"] == "assistant":
                                await arrived.put((event["turn"]["text"], time.perf_counter()))

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        times = []
        for number in range(count):
            text = f"api{number}"
            started = time.perf_counter()
            post = asyncio.create_task(
                client.post(f"/api/sessions/{session_id}/messages", json={"text": text})
            )
            reply, at = await arrived.get()
            assert f'"{text}"' in reply, reply
            times.append((at - started) * 1000)
            assert (await post).status_code == 200
        listener.cancel()
        return times


async def healthz(api: str, count: int) -> list[float]:
    """GET /healthz on the API instance: an HTTP request that does one Redis PING, for scale."""
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        return times


async def redis_pings(url: str, count: int) -> list[float]:
    client = aioredis.from_url(url)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await client.ping()
        times.append((time.perf_counter() - started) * 1000)
    await client.aclose()
    return times


async def measure(args: argparse.Namespace, env: dict[str, str]) -> dict[str, list[float]]:
    upstream, upstream_port = start(f"{args.package}.dev_upstream:app", env)
    upstream_url = f"ws://{HOST}:{upstream_port}/v1/realtime"
    ours_env = {**env, "UPSTREAM_URL": upstream_url}
    owner, _ = start(f"{args.package}.realtime:app", ours_env)
    api, api_port = start(f"{args.package}.main:app", ours_env)
    baseline, baseline_port = start("stateful_inmemory:app", {"UPSTREAM_URL": upstream_url})
    fair_env = {"UPSTREAM_URL": upstream_url, "BASELINE_REDIS_URL": args.redis_url}
    fair, fair_port = start("stateful_inmemory:app", fair_env)
    api_url = f"http://{HOST}:{api_port}"
    results: dict[str, list[float]] = {
        "ws ours": [],
        "ws in-memory": [],
        "ws in-memory + 1 write": [],
        "api": [],
        "healthz": [],
        "ping": [],
    }
    with running(api, owner, baseline, fair, upstream):
        await asyncio.sleep(1)
        async with httpx.AsyncClient(base_url=api_url) as client:
            for round_ in range(args.rounds + 1):
                created = (await client.post("/api/sessions")).json()
                ours_url = created["connect"]["url"]
                # The token travels as a subprotocol, never in the URL.
                protocols = [Subprotocol(p) for p in created["connect"]["protocols"]]
                base_url = f"ws://{HOST}:{baseline_port}/ws/sessions/{secrets.token_hex(16)}"
                fair_url = f"ws://{HOST}:{fair_port}/ws/sessions/{secrets.token_hex(16)}"
                jobs = [
                    (
                        "ws ours",
                        ws_round_trips(ours_url, args.per_round, ours=True, protocols=protocols),
                    ),
                    ("ws in-memory", ws_round_trips(base_url, args.per_round, ours=False)),
                    (
                        "ws in-memory + 1 write",
                        ws_round_trips(fair_url, args.per_round, ours=False),
                    ),
                    ("api", api_round_trips(api_url, args.per_round)),
                    ("healthz", healthz(api_url, args.per_round)),
                    ("ping", redis_pings(args.redis_url, args.per_round)),
                ]
                if round_ % 2:
                    jobs.reverse()  # drift on a busy machine hits every setup alike
                for name, job in jobs:
                    times = await job
                    if round_:  # the first round warms up
                        results[name] += times
    return results


async def time_owner_loss(args: argparse.Namespace, env: dict[str, str]) -> list[float]:
    """SIGKILL an owner; how long until the API answers 410 session_owner_lost."""
    upstream, upstream_port = start(f"{args.package}.dev_upstream:app", env)
    upstream_url = f"ws://{HOST}:{upstream_port}/v1/realtime"
    elapsed = []
    with running(upstream):
        for trial in range(args.loss_trials):
            trial_env = {
                **env,
                "KEY_PREFIX": f"{env['KEY_PREFIX']}-loss{trial}",
                "UPSTREAM_URL": upstream_url,
                "LEASE_SECONDS": str(args.lease),
            }
            owner, _ = start(f"{args.package}.realtime:app", trial_env)
            api, api_port = start(f"{args.package}.main:app", trial_env)
            with running(api):
                async with httpx.AsyncClient(base_url=f"http://{HOST}:{api_port}") as client:
                    session_id = (await client.post("/api/sessions")).json()["session_id"]
                    # Anywhere in the heartbeat cycle (a third of a lease), as a crash would be.
                    await asyncio.sleep(0.2 + random.uniform(0, args.lease / 3))  # noqa: S311
                    owner.send_signal(signal.SIGKILL)
                    killed = time.perf_counter()
                    owner.wait()
                    while True:
                        response = await client.get(f"/api/sessions/{session_id}")
                        if response.status_code == 410:
                            elapsed.append(time.perf_counter() - killed)
                            break
                        await asyncio.sleep(0.02)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="the generated stateful package")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--lease", type=int, default=15, help="LEASE_SECONDS for the loss trials")
    parser.add_argument("--loss-trials", type=int, default=3)
    args = parser.parse_args()
    if urlsplit(args.redis_url).hostname not in {HOST, "localhost"}:
        raise SystemExit("refusing a non-local Redis")
    key = subprocess.run(  # noqa: S603 - our interpreter, our package's keygen
        [sys.executable, "-m", args.package, "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    prefix = f"bench-{secrets.token_hex(4)}"
    env = {"APP_ENV": "development", "REDIS_URL": args.redis_url, "KEY_PREFIX": prefix}
    env["SESSION_KEYS"] = key
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    try:
        results = asyncio.run(measure(args, env))
        loss = asyncio.run(time_owner_loss(args, env))
    finally:
        store = redis.Redis.from_url(args.redis_url)
        for key_name in store.scan_iter(f"{prefix}*"):
            store.delete(key_name)
    print("\n| path | n | p50 ms | p90 ms | mean ms |\n|---|---|---|---|---|")
    for name, times in results.items():
        print(
            f"| {name} | {len(times)} | {p(times, 0.5):.3f} | {p(times, 0.9):.3f} "
            f"| {statistics.fmean(times):.3f} |"
        )
    ws = p(results["ws ours"], 0.5) / p(results["ws in-memory + 1 write"], 0.5)
    ws_bare = p(results["ws ours"], 0.5) / p(results["ws in-memory"], 0.5)
    added = p(results["api"], 0.5) - p(results["ws ours"], 0.5)
    rtt = p(results["ping"], 0.5)
    print("\n| measure | figure | target |\n|---|---|---|")
    print(f"| ws p50, ours / in-memory + 1 write (fair) | {ws:.2f}x | <= {WS_TARGET}x |")
    print(f"| ws p50, ours / in-memory writing nothing | {ws_bare:.2f}x | (for scale) |")
    print(
        f"| api p50 - ws p50, in Redis round trips | {added:.3f} ms = {added / rtt:.2f} RTT "
        f"(RTT p50 {rtt:.3f} ms) | <= {API_TARGET_RTT} |"
    )
    print(
        f"| SIGKILL to 410, lease {args.lease} s | "
        f"{', '.join(f'{value:.2f}' for value in loss)} s (max {max(loss):.2f}) "
        f"| <= {args.lease + 1} s |"
    )


if __name__ == "__main__":
    main()
