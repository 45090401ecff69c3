"""A kv_seed project, then a stateful one, on a Redis Cluster (3 masters, 3 replicas) that loses
a master: only the sessions in that master's slots fail, with 503 store_unavailable and
Retry-After, until its replica takes over; every other session is served throughout, and no
acknowledged write is lost.

Each cluster is its test's own (it kills one of its nodes), started by tasks.py's helper.
"""

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import tasks  # the repository's entry point, whose helper starts local clusters

from .conftest import app_instances, free_port, generate, uv

SEED_HEADER = "X-Session-Seed"
SESSIONS = 24


def redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def master_slots(port: int) -> dict[int, list[range]]:
    """Each master that serves slots: its port and the slot ranges, as `CLUSTER NODES` says."""
    masters: dict[int, list[range]] = {}
    for line in redis_cli(port, "cluster", "nodes").splitlines():
        fields = line.split()
        if "master" not in fields[2].split(",") or "fail" in fields[2] or len(fields) < 9:
            continue
        ranges = [
            range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1)
            for part in fields[8:]
            if not part.startswith("[")
        ]
        masters[int(fields[1].split("@")[0].rpartition(":")[2])] = ranges
    return masters


def slot_of(port: int, session_id: str) -> int:
    """The hash slot of every key of the session: its id is their hash tag."""
    return int(redis_cli(port, "cluster", "keyslot", session_id))


def split_by_node(
    port: int, victim_slots: list[range], sessions: Iterable[str]
) -> tuple[set[str], set[str]]:
    """The sessions whose slots the victim serves, and the others (slots asked of `port`)."""
    in_victim = {
        session_id
        for session_id in sessions
        if any(slot_of(port, session_id) in slots for slots in victim_slots)
    }
    return in_victim, set(sessions) - in_victim


async def send(client: httpx.AsyncClient, session_id: str, seed: str, text: str) -> httpx.Response:
    return await client.post(
        f"/api/sessions/{session_id}/messages", json={"text": text}, headers={SEED_HEADER: seed}
    )


@pytest.fixture(scope="module")
def kv_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = generate(tmp_path_factory.mktemp("kv") / "app")
    uv(project, "sync")
    return project


def test_a_dead_master_fails_only_its_slots_until_its_replica_takes_over(kv_project: Path) -> None:
    project = kv_project
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    with tasks.local_redis_cluster(quiet=True) as nodes:
        ports = list(nodes)
        masters = master_slots(ports[0])
        victim, survivor = sorted(masters)[:2]
        env = {
            "APP_ENV": "development",
            "REDIS_URL": f"redis://127.0.0.1:{survivor}",
            # Told, not asked (the generated suite on a cluster covers the asking).
            "REDIS_CLUSTER": "true",
            "KEY_PREFIX": "failover",
            "SESSION_KEYS": key,
        }
        with app_instances(project, env, 2) as urls:
            asyncio.run(_lose_a_master(urls, nodes[victim], masters[victim], survivor))


async def _lose_a_master(
    urls: list[str], victim: subprocess.Popen[bytes], victim_slots: list[range], survivor: int
) -> None:
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]
    try:
        seeds: dict[str, str] = {}
        acknowledged: dict[str, int] = {}
        for number in range(SESSIONS):
            api = clients[number % 2]
            created = (await api.post("/api/sessions")).json()
            sent = await send(api, created["session_id"], created["seed"], "before")
            assert sent.status_code == 200, sent.text
            seeds[created["session_id"]] = sent.headers[SEED_HEADER]
            acknowledged[created["session_id"]] = 1
        in_victim, elsewhere = split_by_node(survivor, victim_slots, seeds)
        assert in_victim and elsewhere, "24 sessions spread over 3 masters"

        victim.kill()
        victim.wait()
        lost_at = time.monotonic()
        # Before the replica can be elected (node timeout 2 s): every session at once.
        answers = await asyncio.gather(
            *(
                send(clients[n % 2], session_id, seeds[session_id], "during")
                for n, session_id in enumerate(seeds)
            )
        )
        window = time.monotonic() - lost_at
        # The instances stay healthy: a health check must not pull them all out of service.
        for client in clients:
            assert (await client.get("/healthz")).status_code == 200
        for session_id, answer in zip(seeds, answers, strict=True):
            if session_id in elsewhere:
                assert answer.status_code == 200, answer.text
                seeds[session_id] = answer.headers[SEED_HEADER]
                acknowledged[session_id] += 1
            else:
                assert answer.status_code == 503, (window, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "store_unavailable"
                assert int(answer.headers["Retry-After"]) > 0

        # The replica takes over: the failed sessions are served again, from the store.
        deadline = time.monotonic() + 30
        for session_id in sorted(in_victim):
            while (read := await clients[0].get(f"/api/sessions/{session_id}")).status_code != 200:
                assert read.status_code == 503, read.text
                assert time.monotonic() < deadline, (
                    f"the replica never took over: {read.text}\n"
                    + redis_cli(survivor, "cluster", "nodes")
                )
                await asyncio.sleep(0.25)
            sent = await send(clients[1], session_id, seeds[session_id], "after")
            assert sent.status_code == 200, sent.text
            seeds[session_id] = sent.headers[SEED_HEADER]
            acknowledged[session_id] += 1

        # Every acknowledged message is in its session (user turn and reply), on any instance.
        for number, (session_id, seed) in enumerate(seeds.items()):
            read = await clients[number % 2].get(
                f"/api/sessions/{session_id}", headers={SEED_HEADER: seed}
            )
            assert read.status_code == 200, read.text
            assert len(read.json()["turns"]) == 2 * acknowledged[session_id], session_id
    finally:
        for client in clients:
            await client.aclose()


# Run with the generated project's interpreter: an instance's EventHub on the cluster listens to
# one stream in each master's slots. A master dies (neither the node in REDIS_URL nor the one
# the hub's subscription landed on, whose death ends every stream by design), and two streams
# have news: one elsewhere an event, the dead master's a notice sent through a live node, so
# the hub's next read names both. Prints what each listener saw.
STREAMS_SCRIPT = """
import asyncio, json, os, secrets, signal, sys
import redis.asyncio as redis
from redis.crc import key_slot
from session_app.sessions.backend import RedisClusterBackend, StoreUnavailable
from session_app.sessions.event_hub import EventHub
from session_app.sessions.keyspace import SessionKeyspace
from session_app.sessions.models import SessionLimits

entry, masters = int(sys.argv[1]), json.loads(sys.argv[2])  # port: [pid, [[first, last], ...]]


async def main():
    backend = RedisClusterBackend(f"redis://127.0.0.1:{entry}", stream_notices="streams:events:*")
    keyspace = SessionKeyspace(
        backend, prefix="streams", ttl_seconds=600, limits=SessionLimits(100, 100_000)
    )
    reader = backend.stream_reader()
    hub = EventHub(keyspace, reader, max_streams=10)
    owner = lambda sid: next(
        port for port, (_, slots) in masters.items()
        if any(a <= key_slot(sid.encode()) <= b for a, b in slots)
    )
    sessions = {}
    while len(sessions) < len(masters):
        sid = secrets.token_hex(16)
        sessions.setdefault(owner(sid), sid)
    seen = {port: [] for port in sessions}

    async def listen(port):
        try:
            async for _, fields in hub.listen(sessions[port], "0-0", counted=False).entries():
                seen[port].append(json.loads(fields["data"])["type"])
        except StoreUnavailable:
            seen[port].append("ended")

    tasks = {port: asyncio.create_task(listen(port)) for port in sessions}
    await asyncio.sleep(1.0)  # every listener joined, and read once
    subscribed = str(reader._subscriber.connection_pool.connection_kwargs["port"])
    victim = next(port for port in masters if port not in (str(entry), subscribed))
    os.kill(masters[victim][0], signal.SIGKILL)
    await keyspace.append_event(sessions[str(entry)], {"type": "news"})
    async with redis.Redis(port=entry) as node:
        await node.publish(keyspace.keys.events(sessions[victim]), "")
    await asyncio.sleep(1.5)  # before the replica takes over (node timeout 2 s)
    print(json.dumps({
        "victim": seen[victim],
        "survivor": seen[str(entry)],
        "survivor_open": not tasks[str(entry)].done(),
    }))
    os._exit(0)


asyncio.run(main())
"""


def test_a_dead_master_ends_only_the_event_streams_in_its_slots(kv_project: Path) -> None:
    """An instance reads all its streams in one pipeline; a master's death fails that pipeline,
    and must end only the streams in the master's slots: the others keep being served."""
    with tasks.local_redis_cluster(quiet=True) as nodes:
        masters = master_slots(next(iter(nodes)))
        described = {
            port: [nodes[port].pid, [[part.start, part.stop - 1] for part in slots]]
            for port, slots in masters.items()
        }
        done = subprocess.run(
            [
                str(kv_project / ".venv" / "bin" / "python"),
                "-c",
                STREAMS_SCRIPT,
                str(min(masters)),
                json.dumps(described),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"victim": ["ended"], "survivor": ["news"], "survivor_open": True}, done.stderr


@contextmanager
def stateful_services(project: Path, env: dict[str, str]) -> Iterator[str]:
    """The development upstream, two realtime owners (named with braces, which must not move
    their keys' hash slot) and one API instance; yields the API's URL."""
    python = str(project / ".venv" / "bin" / "python")
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "VIRTUAL_ENV")} | env
    upstream, owners, api = free_port(), [free_port(), free_port()], free_port()
    base["UPSTREAM_URL"] = f"ws://127.0.0.1:{upstream}/v1/realtime"
    quiet = ["--no-access-log"]
    commands: list[tuple[list[str], dict[str, str]]] = [
        (["uvicorn", "session_app.dev_upstream:app", "--port", str(upstream)], {})
    ]
    commands += [
        (
            ["session_app.realtime", "--port", str(port)],
            {"REALTIME_PUBLIC_URL": f"ws://127.0.0.1:{port}", "INSTANCE_NAME": f"owner-{{{n}}}"},
        )
        for n, port in enumerate(owners)
    ]
    commands.append((["uvicorn", "session_app.main:app", "--port", str(api)], {}))
    processes = [
        subprocess.Popen([python, "-m", *command, *quiet], cwd=project, env=base | extra)
        for command, extra in commands
    ]
    try:
        for port in [*owners, api]:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"port {port} did not become healthy"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{api}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_a_dead_master_fails_only_its_stateful_sessions_until_its_replica_takes_over(
    tmp_path: Path,
) -> None:
    """The owners' keys share one hash slot (the prefix's); the master that dies is another, so
    every session elsewhere keeps its owner and is answered throughout."""
    project = generate(tmp_path / "app", fix="stateful")
    uv(project, "sync")
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    with tasks.local_redis_cluster(quiet=True) as nodes:
        ports = list(nodes)
        masters = master_slots(ports[0])
        fleet = slot_of(ports[0], "failover")
        victim = next(
            port for port in sorted(masters) if not any(fleet in part for part in masters[port])
        )
        survivor = next(port for port in sorted(masters) if port != victim)
        env = {
            "APP_ENV": "development",
            "REDIS_URL": f"redis://127.0.0.1:{survivor}",
            "KEY_PREFIX": "failover",
            "SESSION_KEYS": key,
            "SESSION_CREATE_RATE": "1000/second",
        }
        with stateful_services(project, env) as url:
            asyncio.run(_lose_a_stateful_master(url, nodes[victim], masters[victim], survivor))


async def _lose_a_stateful_master(
    url: str, victim: subprocess.Popen[bytes], victim_slots: list[range], survivor: int
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        sessions = []
        for _ in range(SESSIONS // 2):
            created = await api.post("/api/sessions")
            assert created.status_code == 201, created.text
            session_id = created.json()["session_id"]
            sent = await api.post(f"/api/sessions/{session_id}/messages", json={"text": "before"})
            assert sent.status_code == 200, sent.text
            sessions.append(session_id)
        in_victim, elsewhere = split_by_node(survivor, victim_slots, sessions)
        assert in_victim and elsewhere, "12 sessions spread over 3 masters"

        victim.kill()
        victim.wait()
        answers = await asyncio.gather(
            *(
                api.post(f"/api/sessions/{session_id}/messages", json={"text": "during"})
                for session_id in sessions
            )
        )
        assert (await api.get("/healthz")).status_code == 200
        for session_id, answer in zip(sessions, answers, strict=True):
            if session_id in elsewhere:
                assert answer.status_code == 200, answer.text
            elif answer.status_code != 200:  # the replica may already have taken over
                assert answer.status_code == 503, answer.text
                assert answer.json()["code"] == "store_unavailable"

        # The replica takes over: the failed sessions are answered again, by their owners.
        deadline = time.monotonic() + 30
        for session_id in sorted(in_victim):
            path = f"/api/sessions/{session_id}/messages"
            while (sent := await api.post(path, json={"text": "after"})).status_code != 200:
                assert sent.status_code == 503, sent.text
                assert time.monotonic() < deadline, redis_cli(survivor, "cluster", "nodes")
                await asyncio.sleep(0.25)
