"""The stateful owner's relay overhead per server event, against a direct client connection to
the same development upstream.

The upstream streams each reply as a burst of text deltas (its pause between words is set to 0
here, so the burst is as fast as the upstream can send). Two clients, in the same rounds:

* direct: a WebSocket to the upstream in the OpenAI Realtime protocol (what the owner itself
  does), from `conversation.item.create` + `response.create` to `response.done`;
* owner: the browser's WebSocket to the session's owner (`python -m <package>.realtime`), which
  relays each `response.output_text.delta` as a `delta` event.

For each reply, the span from its first delta to its last, divided by the deltas in between, is
the time per event on that path; the fixed costs of an exchange (the request, the store write
after `response.done`) fall outside the span. Overhead per event = owner - direct, per round
(the same reply, back to back); reported as the p50 over rounds. Target: <= 0.2 ms.

Run with a generated stateful project's interpreter (Redis at REDIS_URL, default 127.0.0.1:6379):

    ../bench-stateful/.venv/bin/python bench/stateful_relay.py --package session_app
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import redis
from websockets.asyncio.client import ClientConnection, connect

from stateful import HOST, p, running, start

TARGET_MS = 0.2


# Per reply: time per event over the burst, time from the message to its first delta, deltas.
Reply = tuple[float, float, int]


def timing(started: float, arrivals: list[float]) -> Reply:
    per_event = (arrivals[-1] - arrivals[0]) * 1000 / (len(arrivals) - 1)
    return per_event, (arrivals[0] - started) * 1000, len(arrivals)


async def direct_span(upstream_url: str, text: str) -> Reply:
    """One reply read straight from the upstream."""
    headers = {"Authorization": "Bearer development"}
    async with connect(f"{upstream_url}?model=gpt-realtime", additional_headers=headers) as ws:
        said = [{"type": "input_text", "text": text}]
        item = {"type": "message", "role": "user", "content": said}
        await ws.recv()  # session.created
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await ws.send(json.dumps({"type": "response.create"}))
        arrivals = []
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "response.output_text.delta":
                arrivals.append(time.perf_counter())
            elif event["type"] == "response.done":
                break
    return timing(started, arrivals)


async def owner_span(socket: ClientConnection, text: str) -> Reply:
    """One reply relayed by the owner."""
    started = time.perf_counter()
    await socket.send(json.dumps({"text": text}))
    arrivals = []
    while True:
        event = json.loads(await socket.recv())
        if event["type"] == "delta":
            arrivals.append(time.perf_counter())
        elif event["type"] == "turn" and event["turn"]["role"] == "assistant":
            break
    return timing(started, arrivals)


async def measure(args: argparse.Namespace, env: dict[str, str]) -> dict[str, list[float]]:
    # The upstream, without its pause between words: the bench's own wrapper module.
    upstream, upstream_port = start("relay_upstream:app", {**env, "BENCH_PACKAGE": args.package})
    upstream_url = f"ws://{HOST}:{upstream_port}/v1/realtime"
    ours_env = {**env, "UPSTREAM_URL": upstream_url}
    owner, _ = start(f"{args.package}.realtime:app", ours_env)
    api, api_port = start(f"{args.package}.main:app", ours_env)
    results: dict[str, list[float]] = {
        "per event, direct": [],
        "per event, owner": [],
        "per event, owner - direct": [],
        "first delta, direct": [],
        "first delta, owner": [],
        "first delta, owner - direct": [],
    }
    text = " ".join(f"w{n}" for n in range(args.words))
    deltas = 0
    with running(api, owner, upstream):
        await asyncio.sleep(1)
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{api_port}") as client:
            for round_ in range(args.rounds + 1):
                if round_ % 20 == 0:  # a fresh session before it grows past its limits
                    created = (await client.post("/api/sessions")).json()
                    address = f"{created['connect']['url']}?token={created['connect']['token']}"
                    socket = await connect(address, max_size=None)
                    await socket.recv()  # ready
                jobs = [direct_span(upstream_url, text), owner_span(socket, text)]
                names = ["direct", "owner"]
                if round_ % 2:
                    jobs.reverse()  # drift on a busy machine hits both paths alike
                    names.reverse()
                replies = {}
                for name, job in zip(names, jobs, strict=True):
                    replies[name] = await job
                each_d, first_d, deltas = replies["direct"]
                each_o, first_o, _ = replies["owner"]
                if round_:  # the first round warms up
                    for measure_, direct, owner_ in (
                        ("per event", each_d, each_o),
                        ("first delta", first_d, first_o),
                    ):
                        results[f"{measure_}, direct"].append(direct)
                        results[f"{measure_}, owner"].append(owner_)
                        results[f"{measure_}, owner - direct"].append(owner_ - direct)
                if round_ % 20 == 19:
                    await socket.close()
            await socket.close()
    print(f"{deltas} deltas per reply, {args.rounds} rounds")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="the generated stateful package")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--words", type=int, default=200, help="words in the message echoed")
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
    finally:
        store = redis.Redis.from_url(args.redis_url)
        for key_name in store.scan_iter(f"{prefix}*"):
            store.delete(key_name)
    print("\n| measure | n | p50 ms | p90 ms | mean ms |\n|---|---|---|---|---|")
    for name, times in results.items():
        print(
            f"| {name} | {len(times)} | {p(times, 0.5):.4f} | {p(times, 0.9):.4f} "
            f"| {statistics.fmean(times):.4f} |"
        )
    overhead = p(results["per event, owner - direct"], 0.5)
    print(f"\n| owner relay overhead per event, p50 | {overhead:.4f} ms | <= {TARGET_MS} ms |")


if __name__ == "__main__":
    main()
