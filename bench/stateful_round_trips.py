"""The Redis round trips of the stateful fix's API path: one message POSTed to an API instance,
relayed through the owner's inbox, until its reply is back on the API instance's event stream.

Redis's MONITOR lists every command the server runs, with the client that sent it and the time
it ran; a script's own calls are marked `lua` and are not round trips. For each of `--messages`
messages (the 2nd and later of a session, without and with an Idempotency-Key) the bench lists
the commands sent from the POST until a moment after its answer, on this bench's own database,
by the process that sent them (API or owner), and counts:

* all: every command the two services sent for the message, including the event reader's and
  the inbox reader's next blocking reads and the owner's acknowledgement after the reply;
* critical path: the round trips the reply waits for, one after another (the API's inbox post
  and catch-up read, the delivery of the input to the owner's blocked inbox read, the owner's
  write, and the delivery of the turn to the API's blocked event read). Target: <= 6.

The owner's heartbeat (every third of a lease) is kept out of the window with a long lease.

Run with a generated stateful project's interpreter, against a Redis no one else uses heavily
(MONITOR slows every client of the server while it runs):

    ../bench-stateful/.venv/bin/python bench/stateful_round_trips.py --package session_app
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis

from stateful import HOST, running, start

TARGET = 6
# The API's commands a POST waits on before the owner has its input.
CRITICAL = ("EVAL", "EVALSHA", "XREAD", "GET", "HGET", "HMGET")


def monitor(url: str, lines: list[dict[str, Any]], stop: threading.Event) -> None:
    with redis.Redis.from_url(url, decode_responses=True).monitor() as watch:
        for command in watch.listen():
            lines.append(command)
            if stop.is_set():
                return


def classify(lines: list[dict[str, Any]], db: int, names: dict[int, str]) -> list[str]:
    """The commands of the window as `who command`, in the order they ran; `who` is the name
    the sending process gave its connection (each instance names its connections after itself,
    CLIENT SETNAME), by the connection's local port."""
    named = []
    for line in lines:
        if line.get("db") != db or line.get("client_type") == "lua":
            continue
        who = names.get(int(line["client_port"]))
        if who is not None:  # not this bench's own connection
            named.append(f"{who} {line['command'][:90]}")
    return named


def connection_names(store: redis.Redis, db: int) -> dict[int, str]:
    """`api` or `owner` by local port, for this database's named connections."""
    names = {}
    for client in store.client_list():
        name = client.get("name", "")
        if int(client["db"]) == db and name.startswith("bench-"):
            names[int(client["addr"].rsplit(":", 1)[1])] = name.removeprefix("bench-")
    return names


def critical_path(commands: list[str]) -> int:
    """Round trips the reply waits for, one after another: the API's own commands before the
    owner writes (the inbox post and the catch-up read; its event reader re-arming a blocking
    read runs beside them), the owner's write, and the two deliveries to blocked readers (the
    input to the owner's inbox read, the turn to the API's event read), which MONITOR shows
    only as the readers' next reads."""
    waited = 0
    for command in commands:
        who, name = command.split(" ", 1)
        verb = name.split(" ", 1)[0]
        if who == "owner" and verb.startswith("EVAL"):
            return waited + 1 + 2
        if who == "api" and verb in CRITICAL and "BLOCK" not in name:
            waited += 1
    raise SystemExit("the owner wrote nothing in the window: " + "; ".join(commands))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="the generated stateful package")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    if urlsplit(args.redis_url).hostname not in {HOST, "localhost"}:
        raise SystemExit("refusing a non-local Redis")
    db = int(urlsplit(args.redis_url).path.strip("/") or 0)
    key = subprocess.run(  # noqa: S603 - our interpreter, our package's keygen
        [sys.executable, "-m", args.package, "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    prefix = f"bench-{secrets.token_hex(4)}"
    env = {"APP_ENV": "development", "REDIS_URL": args.redis_url, "KEY_PREFIX": prefix}
    env |= {"SESSION_KEYS": key, "LEASE_SECONDS": "120"}
    store = redis.Redis.from_url(args.redis_url, decode_responses=True)
    upstream, upstream_port = start(f"{args.package}.dev_upstream:app", env)
    env["UPSTREAM_URL"] = f"ws://{HOST}:{upstream_port}/v1/realtime"
    owner, _ = start(f"{args.package}.realtime:app", {**env, "INSTANCE_NAME": "bench-owner"})
    api, api_port = start(f"{args.package}.main:app", {**env, "INSTANCE_NAME": "bench-api"})
    counts: dict[str, list[int]] = {"all": [], "critical path": []}
    example: list[str] = []
    try:
        with (
            running(api, owner, upstream),
            httpx.Client(base_url=f"http://{HOST}:{api_port}") as client,
        ):
            session_id = client.post("/api/sessions").json()["session_id"]
            path = f"/api/sessions/{session_id}/messages"
            assert client.post(path, json={"text": "warm up"}).status_code == 200
            for number in range(args.messages * 2):
                headers = {"Idempotency-Key": f"m{number}"} if number % 2 else {}
                lines: list[dict[str, Any]] = []
                stop = threading.Event()
                watcher = threading.Thread(
                    target=monitor, args=(args.redis_url, lines, stop), daemon=True
                )
                watcher.start()
                time.sleep(0.3)
                lines.clear()
                sent = client.post(path, json={"text": f"m{number}"}, headers=headers)
                assert sent.status_code == 200, sent.text
                time.sleep(0.3)
                stop.set()
                store.ping()
                watcher.join(timeout=5)
                commands = classify(lines, db, connection_names(store, db))
                on_path = critical_path(commands)
                kind = "with key" if headers else "no key"
                counts.setdefault(f"all, {kind}", []).append(len(commands))
                counts.setdefault(f"critical path, {kind}", []).append(on_path)
                counts["all"].append(len(commands))
                counts["critical path"].append(on_path)
                if number == 2:
                    example = commands
    finally:
        for key_name in store.scan_iter(f"{prefix}*"):
            store.delete(key_name)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print("\nOne message without a key, every command in the window:")
    for command in example:
        print(f"    {command}")
    print("\n| commands per message | median | max |\n|---|---|---|")
    for name, values in counts.items():
        print(f"| {name} | {statistics.median(values):g} | {max(values)} |")
    worst = max(counts["critical path, with key"])
    common = max(counts["critical path, no key"])
    print(f"\n| API path round trips on the critical path, no key, max | {common} | <= {TARGET} |")
    print(f"| the same with an Idempotency-Key, max | {worst} | |")


if __name__ == "__main__":
    main()
