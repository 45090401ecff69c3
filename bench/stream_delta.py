"""Streamed replies across instances: how long after a POST on instance A the first `delta`
reaches an SSE client on instance B, minus the provider's own first-token time.

Two real uvicorn instances of a generated kv_seed project share one Redis, with
ASSISTANT_PROVIDER=openai pointed at a local OpenAI-compatible server run by this script (it
waits FIRST_TOKEN_MS before its first chunk and TOKEN_GAP_MS between the others, as a model
streams tokens, and stamps when it got the request and when it sent that first chunk; it runs in
a process of its own, so that it never waits for this one's GIL). An SSE client holds B's event
stream; each round POSTs one message to A, with the session's current seed as a browser sends
it, after an untimed read that resets the session to the same 20 turns (transcript.py), so every
round meets the same history. Reported, per round, on this process's monotonic clock:

* overhead = (first delta seen on B - POST sent to A) - (first chunk sent - request received by
  the provider): everything the app adds on the way to the first word;
* relay = first delta seen on B - first chunk sent by the provider: the delta's own way (the
  SDK's parse, one script on A, B's stream reader, SSE to the client);
* to the provider = request received by the provider - POST sent to A: hydration, the
  message's write, the SDK's request;
* a Redis round trip (PING from this process) measured in the same run, interleaved;
* an HTTP exchange (a GET of the provider's `/stamps`, on a keep-alive connection from this
  process), in the same run: the overhead has four HTTP legs (this process to A, A to the
  provider and back with the first chunk, B's event stream to this process), each one a part of
  such an exchange, and none of them the store's.

Only 127.0.0.1 is contacted. Run it with the generated project's interpreter:

    ../app/.venv/bin/python bench/stream_delta.py --package app --redis-url redis://127.0.0.1:6379/3
"""

import argparse
import asyncio
import importlib
import json
import os
import queue
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import transcript

HOST = "127.0.0.1"
SEED = "X-Session-Seed"
FIRST_TOKEN_MS = 20
# A model streams a token every 10 to 50 ms: the first delta reaches the events on its own.
TOKEN_GAP_MS = 10


class Provider:
    """/v1/chat/completions, streamed, stamping each request's arrival and first chunk."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.complete, methods=["POST"]),
                Route("/stamps", self.last_stamp),
            ]
        )

    async def last_stamp(self, request: Request) -> Response:
        return JSONResponse(self.stamps[-1] if self.stamps else None)

    async def complete(self, request: Request) -> Response:
        received = time.perf_counter()
        body = await request.json()
        return StreamingResponse(
            self.chunks(body["model"], received), media_type="text/event-stream"
        )

    async def chunks(self, model: str, received: float) -> AsyncIterator[str]:
        await asyncio.sleep(FIRST_TOKEN_MS / 1000)
        for number, piece in enumerate(["Hello", " there", "."]):
            chunk = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            if number == 0:
                self.stamps.append((received, time.perf_counter()))
            else:
                await asyncio.sleep(TOKEN_GAP_MS / 1000)
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


def read_deltas(url: str, seen: "queue.Queue[tuple[float, dict[str, Any]]]") -> None:
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", url) as r,
    ):
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "delta":
                seen.put((time.perf_counter(), json.loads(line[5:])))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", required=True)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--serve-provider", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_provider:
        # Its own process: in this one it would wait for the GIL behind the SSE reader.
        uvicorn.run(Provider().app, host=HOST, port=options.serve_provider, log_level="warning")
        return
    cluster = importlib.import_module(f"{options.package}.cluster")
    config = importlib.import_module(f"{options.package}.config")
    models = importlib.import_module(f"{options.package}.sessions.models")

    provider_port = cluster.free_port()
    provider = subprocess.Popen(  # noqa: S603 - this very script, with our interpreter
        [
            sys.executable,
            __file__,
            "--package",
            options.package,
            "--serve-provider",
            str(provider_port),
        ]
    )
    stamps = httpx.Client(base_url=f"http://{HOST}:{provider_port}", timeout=10)
    deadline = time.monotonic() + 30
    while True:
        try:
            stamps.get("/stamps")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the provider did not start"
            time.sleep(0.05)

    prefix = f"bench-{secrets.token_hex(4)}"
    key = config.new_key()
    # The instances' own codec: the bench hands the session back its 20 turns by a seed.
    codec = transcript.project_codec(options.package, key)
    turns = transcript.project_turns(options.package)
    env = {
        "APP_ENV": "development",
        "REDIS_URL": options.redis_url,
        "KEY_PREFIX": prefix,
        "SESSION_KEYS": key,
        "SESSION_CREATE_RATE": "1000/second",
        "ASSISTANT_PROVIDER": "openai",
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": f"http://{HOST}:{provider_port}/v1",
    }
    instances = [
        cluster.start_instance(name, cluster.free_port(), env) for name in ("bench-A", "bench-B")
    ]
    store = redis.Redis.from_url(options.redis_url)
    try:
        cluster.wait_healthy(instances)
        a = httpx.Client(base_url=instances[0].url, timeout=30)
        session_id = a.post("/api/sessions").json()["session_id"]
        seen: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        url = f"{instances[1].url}/api/sessions/{session_id}/events"
        threading.Thread(target=read_deltas, args=(url, seen), daemon=True).start()
        time.sleep(0.5)
        overheads, relays, asks, round_trips, exchanges = [], [], [], [], []
        rev = 1
        for number in range(options.rounds + 10):
            # Untimed: back to the same 20 turns, at a new revision, as a cold instance would.
            rev += 3
            session = models.Session(session_id=session_id, rev=rev, turns=turns)
            reset = a.get(f"/api/sessions/{session_id}", headers={SEED: codec.encode(session)})
            assert reset.status_code == 200 and reset.json()["rev"] == rev, reset.text
            seed = reset.json()["seed"]
            started = time.perf_counter()
            sent = a.post(
                f"/api/sessions/{session_id}/messages",
                json={"text": f"m{number}"},
                headers={SEED: seed},
            )
            assert sent.status_code == 200, sent.text
            reply_rev = sent.json()["rev"]
            while True:
                at, delta = seen.get(timeout=10)
                if delta["rev"] == reply_rev:
                    break
            # perf_counter is CLOCK_MONOTONIC: one clock for every process of this machine.
            received, first_sent = stamps.get("/stamps").json()
            while not seen.empty():
                seen.get()
            ping = time.perf_counter()
            store.ping()
            round_trip = time.perf_counter() - ping
            exchange = time.perf_counter()
            stamps.get("/stamps")
            exchange = time.perf_counter() - exchange
            if number >= 10:  # warm-up rounds are not counted
                overheads.append((at - started) - (first_sent - received))
                relays.append(at - first_sent)
                asks.append(received - started)
                round_trips.append(round_trip)
                exchanges.append(exchange)
    finally:
        for instance in instances:
            instance.stop()
        for name in store.scan_iter(f"{prefix}:*"):
            store.delete(name)
        provider.terminate()

    ms = 1000
    rtt = statistics.median(round_trips) * ms
    print(
        f"python {sys.version.split()[0]}, {options.rounds} rounds, "
        f"provider first token {FIRST_TOKEN_MS} ms"
    )
    print(f"Redis round trip (PING) p50 {rtt:.3f} ms")
    http = statistics.median(exchanges) * ms
    print(f"HTTP exchange (GET /stamps, keep-alive) p50 {http:.3f} ms")
    measured = (("overhead", overheads), ("relay", relays), ("to the provider", asks))
    for name, values in measured:
        p50, p90, p99 = (percentile(values, share) * ms for share in (0.5, 0.9, 0.99))
        print(
            f"{name}: p50 {p50:.2f} ms ({p50 / rtt:.1f} round trips, {p50 / http:.1f} HTTP "
            f"exchanges), p90 {p90:.2f}, p99 {p99:.2f}"
        )


if __name__ == "__main__":
    main()
