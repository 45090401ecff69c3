"""Request latency through real uvicorn processes: the generated app against the broken baseline.

* kv: the generated app, 3 instances (`uvicorn <package>.main:app`) on one Redis, each request
  sent to the next instance in turn, as a round-robin load balancer would.
* in-memory: the same app with a process-local dict instead of the store (inmemory_app.py),
  served by ONE instance by default, the only way that baseline works without seeds
  (`--memory-instances 3` spreads it over as many processes as kv, so only the store differs).
* naive Redis: the same app on the store users write first (naive_app.py, as in seed 002): GET
  the session's JSON, SET it back; no compare-and-set, no events, no seed. As many instances as
  kv, on the same Redis.
* floor: the in-memory app plus a store round trip that does nothing wherever kv makes one
  (floor_app.py: GET one, POST two), through the generated backend, as many instances as kv:
  the least any design with kv's round trips costs here, so kv's distance to it is what the
  store's own work costs.

Both are started with the same command and options, and both get the same session: 20 turns,
about 8 KB (transcript.py), put in place the way a cold instance receives it, by a GET carrying
its seed. Requests carry the last seed in X-Session-Seed, as the demo page does, so both sides
verify and decrypt it on every call. Measured, interleaved in rounds so that drift on a noisy
machine hits both alike:

* GET /api/sessions/{id}: the read the page makes when it opens a session.
* POST /api/sessions/{id}/messages: one exchange. Before each timed POST an untimed GET with a
  seed of the next revision resets the session to its 20 turns, so every POST meets ~8 KB of
  history instead of a transcript that grows by two turns per request.

The latency is the client's wall time for one request on a warm keep-alive connection (a
sequential httpx client, so at most one request is in flight). Only 127.0.0.1 is contacted;
every loop is bounded by a request count and by --max-seconds.

Run it with the generated project's interpreter (Redis at REDIS_URL, default 127.0.0.1:6379; a
node of a local Redis Cluster works too, e.g. one `python3 tasks.py` started):

    ../bench-app/.venv/bin/python bench/latency.py --package session_app
"""

import argparse
import gc
import importlib
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis

import transcript

HOST = "127.0.0.1"  # the bench never sends a request anywhere else
BENCH_DIR = Path(__file__).resolve().parent
SEED_HEADER = "X-Session-Seed"
GET_TARGET = 1.20  # kv GET p50 / in-memory GET p50 (with --memory-instances 3)
POST_TARGET = 1.30  # kv POST p50 / in-memory POST p50 (with --memory-instances 3)
NAIVE_TARGET = 1.0  # kv p50 / naive Redis p50, GET and POST
# Identical for both setups; uvicorn[standard] then picks uvloop and httptools by default.
UVICORN_OPTIONS = ("--no-access-log", "--log-level", "warning")
MESSAGE = "Thanks, that helps. Could you say the same again, more briefly, with one example?"


class BenchError(Exception):
    """A request failed or the setup is wrong; the figures would mean nothing."""


@dataclass
class Setup:
    name: str
    urls: list[str]
    session: Any  # the 20-turn session both setups start from, with its own id
    rev: int = 0
    seed: str = ""
    # Milliseconds per request, one list per measured batch (one batch per round).
    batches: dict[str, list[list[float]]] = field(default_factory=lambda: {"GET": [], "POST": []})
    served_by: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._next_url = cycle(self.urls)

    def all_ms(self, request: str) -> list[float]:
        return [value for batch in self.batches[request] for value in batch]

    def next_url(self) -> str:
        return next(self._next_url)

    @property
    def path(self) -> str:
        return f"/api/sessions/{self.session.session_id}"


def start(cluster: Any, name: str, app: str, port: int, env: Mapping[str, str], cwd: Path) -> Any:
    """cluster.start_instance's command, with an app path of our choosing and the same options."""
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    command += [*UVICORN_OPTIONS, "--app-dir", str(BENCH_DIR)]
    environment = {**os.environ, **env, "INSTANCE_NAME": name}
    # Our own interpreter and our own modules: no untrusted input reaches the command.
    process = subprocess.Popen(command, env=environment, cwd=cwd)  # noqa: S603
    return cluster.Instance(name=name, url=f"http://{HOST}:{port}", process=process)


def seed_header(setup: Setup) -> dict[str, str]:
    """The last seed the setup handed out, as the demo page sends it; none from the naive one."""
    return {SEED_HEADER: setup.seed} if setup.seed else {}


def expect(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


class Bench:
    def __init__(self, client: httpx.Client, codec: Any, deadline: float) -> None:
        self.client = client
        self.codec = codec
        self.deadline = deadline
        self.truncated = False

    def seed_for(self, setup: Setup, rev: int) -> str:
        seed: str | None = self.codec.encode(setup.session.model_copy(update={"rev": rev}))
        if seed is None:
            raise BenchError("the bench session outgrew the seed size cap")
        return seed

    def reset(self, setup: Setup, url: str) -> None:
        """Bring the session back to its 20 turns, at a new revision, as a cold instance would."""
        rev = setup.rev + 1
        seed = self.seed_for(setup, rev)
        response = self.client.get(url + setup.path, headers={SEED_HEADER: seed})
        body = expect(response, 200, f"{setup.name} reset")
        if body["rev"] != rev or len(body["turns"]) != len(setup.session.turns):
            raise BenchError(f"{setup.name}: the reset to rev {rev} did not take")
        setup.rev, setup.seed = rev, body["seed"] or ""

    def get(self, setup: Setup, count: int, record: bool = True) -> None:
        # The last POST left 22 turns; read the 20-turn session like every other batch.
        self.reset(setup, setup.next_url())
        headers = seed_header(setup)
        timings: list[float] = []
        if record:
            setup.batches["GET"].append(timings)
        for _ in range(count):
            if time.monotonic() > self.deadline:
                self.truncated = True
                return
            url = setup.next_url() + setup.path
            started = time.perf_counter_ns()
            response = self.client.get(url, headers=headers)
            elapsed = time.perf_counter_ns() - started
            expect(response, 200, f"{setup.name} GET")
            if record:
                timings.append(elapsed / 1e6)
                setup.served_by.add(response.headers.get("x-instance", "?"))

    def post(self, setup: Setup, count: int, record: bool = True) -> None:
        timings: list[float] = []
        if record:
            setup.batches["POST"].append(timings)
        for _ in range(count):
            if time.monotonic() > self.deadline:
                self.truncated = True
                return
            url = setup.next_url()
            self.reset(setup, url)
            started = time.perf_counter_ns()
            response = self.client.post(
                url + setup.path + "/messages",
                json={"text": MESSAGE},
                headers=seed_header(setup),
            )
            elapsed = time.perf_counter_ns() - started
            body = expect(response, 200, f"{setup.name} POST")
            # The message is one revision, its reply the next.
            if body["rev"] != setup.rev + 2:
                raise BenchError(f"{setup.name}: POST answered rev {body['rev']}")
            setup.rev, setup.seed = body["rev"], body["seed"] or ""
            if record:
                timings.append(elapsed / 1e6)
                setup.served_by.add(response.headers.get("x-instance", "?"))


def batch(run: Callable[[], None]) -> None:
    """One measured batch, without the client's garbage collector pausing inside it."""
    gc.collect()
    gc.disable()
    try:
        run()
    finally:
        gc.enable()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(kv: Setup, others: list[tuple[Setup, float | None, float | None]]) -> None:
    """Each setup's latencies, then kv's p50 against each other setup's, with its targets."""
    print("| setup | request | n | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for setup in (kv, *(other for other, _, _ in others)):
        for request in ("GET", "POST"):
            values = setup.all_ms(request)
            mean = statistics.fmean(values) if values else float("nan")
            print(
                f"| {setup.name} | {request} | {len(values)} | {percentile(values, 0.5):.3f} "
                f"| {percentile(values, 0.9):.3f} | {percentile(values, 0.99):.3f} "
                f"| {mean:.3f} |"
            )
    print()
    print("| kv against | request | p50 ratio | target | p90 ratio | per-round p50 ratio |")
    print("|---|---|---:|---|---:|---|")
    for other, get_target, post_target in others:
        for request, target in (("GET", get_target), ("POST", post_target)):
            ours, theirs = kv.all_ms(request), other.all_ms(request)
            ratio = percentile(ours, 0.5) / percentile(theirs, 0.5)
            verdict = "" if target is None else "PASS" if ratio <= target else "MISS"
            p90 = percentile(ours, 0.9) / percentile(theirs, 0.9)
            # Each round's batches ran within seconds of each other: a check on drift.
            rounds = [
                percentile(a, 0.5) / percentile(b, 0.5)
                for a, b in zip(kv.batches[request], other.batches[request], strict=False)
                if a and b
            ]
            spread = (
                f"{statistics.median(rounds):.3f} ({min(rounds):.3f}-{max(rounds):.3f})"
                if rounds
                else "n/a"
            )
            print(
                f"| {other.name} | {request} | {ratio:.3f} "
                f"| {'none' if target is None else f'≤ {target:.2f} {verdict}'} | {p90:.3f} "
                f"| {spread} |"
            )
    print()
    for setup in (kv, *(other for other, _, _ in others)):
        print(f"{setup.name} answered by: {', '.join(sorted(setup.served_by))}")


def plural(instances: int) -> str:
    return f"{instances} instance{'s' if instances != 1 else ''}"


def machine_notes(redis_url: str) -> str:
    with redis.Redis.from_url(redis_url) as client:
        server = client.info("server")["redis_version"]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    # uvloop and httptools are what uvicorn[standard] picks by default for both setups.
    names = ("uvicorn", "uvloop", "httptools", "httpx", "redis")
    libraries = ", ".join(f"{name} {version(name)}" for name in names)
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load}; Redis {server}; {libraries}"
    )


def is_cluster(redis_url: str) -> bool:
    with redis.Redis.from_url(redis_url) as probe:
        return bool(probe.info("cluster").get("cluster_enabled"))


def delete_keys(redis_url: str, prefix: str) -> int:
    if is_cluster(redis_url):  # keys in many slots: scanned on every master, deleted one by one
        with redis.RedisCluster.from_url(redis_url) as cluster:
            return sum(int(cluster.delete(key)) for key in cluster.scan_iter(f"{prefix}:*"))
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        return int(client.delete(*keys)) if keys else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", default="session_app", help="the generated package")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", f"redis://{HOST}:6379/0"),
        help="the Redis the kv instances share (default: $REDIS_URL, else 127.0.0.1:6379)",
    )
    parser.add_argument("--instances", type=int, default=3, help="kv instances")
    parser.add_argument(
        "--memory-instances",
        type=int,
        default=1,
        help="in-memory instances (diagnostic only: >1 measures what co-locating several "
        "processes costs; it still answers because every request carries its seed)",
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=200, help="requests per batch")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests per kind")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop measuring after")
    args = parser.parse_args(argv)
    if urlsplit(args.redis_url).hostname not in {HOST, "localhost"}:
        parser.error("--redis-url must be a local Redis: the bench only talks to 127.0.0.1")

    cluster = importlib.import_module(f"{args.package}.cluster")
    models = importlib.import_module(f"{args.package}.sessions.models")

    key = subprocess.run(  # noqa: S603 - our interpreter, our package's keygen
        [sys.executable, "-m", args.package, "keygen"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # The client's codec shares the instances' key, so it can hand each setup its session
    # exactly as a seed from another instance would arrive.
    codec = transcript.project_codec(args.package, key)
    turns = transcript.project_turns(args.package)
    prefix = f"bench-{secrets.token_hex(4)}"
    common = {"SESSION_KEYS": key, "KEY_PREFIX": prefix}
    kv_env = {**common, "REDIS_URL": args.redis_url}
    # A closed port: the in-memory app must never reach a store.
    memory_env = {**common, "REDIS_URL": f"redis://{HOST}:9/0", "BENCH_PACKAGE": args.package}
    naive_env = {**kv_env, "BENCH_PACKAGE": args.package}
    if is_cluster(args.redis_url):
        naive_env["BENCH_CLUSTER"] = "1"
    kv_app, memory_app, naive_app = f"{args.package}.main:app", "inmemory_app:app", "naive_app:app"
    floor_app = "floor_app:app"

    print(f"Machine: {machine_notes(args.redis_url)}")
    if is_cluster(args.redis_url):
        print(f"Store: the Redis Cluster of the node at {args.redis_url}")
    with ExitStack() as stack:
        # An empty working directory, so no stray .env changes either setup's settings.
        cwd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionfix-bench-")))
        stack.callback(delete_keys, args.redis_url, prefix)
        instances: dict[str, list[Any]] = {"kv": [], "in-memory": [], "naive": [], "floor": []}
        for kind, app, env, count in (
            ("kv", kv_app, kv_env, args.instances),
            ("in-memory", memory_app, memory_env, args.memory_instances),
            ("naive", naive_app, naive_env, args.instances),
            ("floor", floor_app, naive_env, args.instances),
        ):
            for number in range(1, count + 1):
                port = cluster.free_port()
                instance = start(cluster, f"{kind}-{number}", app, port, env, cwd)
                stack.callback(instance.stop)
                instances[kind].append(instance)
        # Nine processes importing the app at once take a while on a small, busy machine.
        cluster.wait_healthy(
            [instance for started in instances.values() for instance in started], timeout=180
        )
        client = stack.enter_context(httpx.Client(timeout=5.0))

        def new_setup(name: str, instances: list[Any]) -> Setup:
            session = models.Session(
                session_id=secrets.token_hex(16), rev=len(turns) // 2 + 1, turns=turns
            )
            setup = Setup(name, [instance.url for instance in instances], session)
            setup.rev = session.rev - 1
            return setup

        kv = new_setup(f"kv ({plural(args.instances)})", instances["kv"])
        memory = new_setup(f"in-memory ({plural(args.memory_instances)})", instances["in-memory"])
        naive = new_setup(f"naive Redis ({plural(args.instances)})", instances["naive"])
        floor = new_setup(f"floor ({plural(args.instances)})", instances["floor"])
        setups = [kv, memory, naive, floor]
        bench = Bench(client, codec, deadline=time.monotonic() + args.max_seconds)
        seed_bytes = len(bench.seed_for(kv, kv.rev + 1))
        for setup in setups:
            bench.reset(setup, setup.urls[0])
            bench.get(setup, args.warmup, record=False)
            bench.post(setup, args.warmup, record=False)
        print(
            f"Session: {len(turns)} turns, seed {seed_bytes} chars; "
            f"{args.rounds} rounds x {args.per_round} requests per setup and kind, "
            f"after {args.warmup} warm-up requests of each\n"
        )
        for round_number in range(args.rounds):
            # Rotate which setup goes first, so none always follows another's batch.
            shift = round_number % len(setups)
            order = setups[shift:] + setups[:shift]
            for setup in order:
                batch(partial(bench.get, setup, args.per_round))
            for setup in reversed(order):
                batch(partial(bench.post, setup, args.per_round))
        if bench.truncated:
            print(f"warning: stopped at --max-seconds {args.max_seconds:.0f}; fewer requests\n")
    report(
        kv,
        [
            (memory, GET_TARGET, POST_TARGET),
            (naive, NAIVE_TARGET, NAIVE_TARGET),
            (floor, None, None),
        ],
    )
    # What kv's round trips alone cost, against the same targets.
    print()
    for request, target in (("GET", GET_TARGET), ("POST", POST_TARGET)):
        ratio = percentile(floor.all_ms(request), 0.5) / percentile(memory.all_ms(request), 0.5)
        print(f"floor / in-memory, {request} p50: {ratio:.3f} (kv's target ≤ {target:.2f})")
    print(f"\nLoad average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
