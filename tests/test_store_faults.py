"""Generated projects in production, on several instances, while their Redis goes wrong.

KV + seed: read-only, full, its script cache flushed, restarted empty. Every failure is a 503
`store_unavailable` problem that changed nothing, and the first request once Redis is back
succeeds. Stateful: down for longer than the owners' lease (every session is routable again
within 2 s of its return, with no process restarted), down while an owner starts (it waits and
says why), read-only and full (503 problems on the API and the realtime instances). Each Redis
here is private: it is faulted on purpose."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .conftest import free_port, generate, uv

pytestmark = pytest.mark.matrix

PACKAGE = "session_app"
SEED_HEADER = "X-Session-Seed"


@dataclass
class PrivateRedis:
    port: int
    # Where SHUTDOWN SAVE writes its snapshot, which the next start loads.
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        command += ["--dir", str(self.directory)]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def cli(self, *command: str, db: int = 0) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "-n", str(db), *command],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    def restart_empty(self) -> None:
        self.cli("SHUTDOWN", "NOSAVE")
        assert self.process is not None
        self.process.wait(timeout=10)
        self.start()

    def shut_down(self) -> float:
        """Stop as a Redis with persistence does: its data saved to disk, every connection gone.
        When it stopped (time.monotonic())."""
        self.cli("SHUTDOWN", "SAVE")
        assert self.process is not None
        self.process.wait(timeout=10)
        return time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    assert shutil.which("redis-server"), "run `python3 tasks.py test`: it installs redis-server"
    server = PrivateRedis(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instances(
    store: PrivateRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[httpx.Client]]:
    """Two production instances of one generated project on the private Redis."""
    project = generate(tmp_path_factory.mktemp("faults") / "app", fix="kv_seed")
    uv(project, "sync")
    python = str(project / ".venv" / "bin" / "python")
    keygen = subprocess.run(
        [python, "-m", PACKAGE, "keygen"], capture_output=True, text=True, check=True
    )
    dropped = {"VIRTUAL_ENV", "REDIS_URL", "PYTHONDONTWRITEBYTECODE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    processes, clients = [], []
    for name in ("api-1", "api-2"):
        port = free_port()
        env = base | {
            "APP_ENV": "production",
            "REDIS_URL": f"redis://127.0.0.1:{store.port}/0",
            "SESSION_KEYS": keygen.stdout.strip(),
            "INSTANCE_NAME": name,
        }
        command = [python, "-m", "uvicorn", f"{PACKAGE}.main:app", "--port", str(port)]
        processes.append(subprocess.Popen([*command, "--no-access-log"], cwd=project, env=env))
        clients.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20))
    try:
        for client in clients:
            wait_until_up(client)
        yield clients
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def wait_until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "an instance did not start"
        time.sleep(0.1)


def assert_store_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "store_unavailable"
    assert "nothing was changed" in answer.json()["detail"]
    assert int(answer.headers["Retry-After"]) > 0


def send(client: httpx.Client, session_id: str, text: str) -> httpx.Response:
    return client.post(f"/api/sessions/{session_id}/messages", json={"text": text})


def turns(client: httpx.Client, session_id: str) -> list[str]:
    read = client.get(f"/api/sessions/{session_id}")
    assert read.status_code == 200, read.text
    return [turn["text"] for turn in read.json()["turns"]]


def test_every_store_fault_is_an_answer_and_nothing_is_lost(
    store: PrivateRedis, instances: list[httpx.Client]
) -> None:
    one, two = instances
    session_id = one.post("/api/sessions").json()["session_id"]
    assert send(two, session_id, "before").status_code == 200
    before = turns(one, session_id)

    # A replica is read-only: writes are refused, reads still answer, and nothing is lost.
    store.cli("REPLICAOF", "127.0.0.1", str(free_port()))
    assert_store_unavailable(send(one, session_id, "while read-only"))
    assert_store_unavailable(one.post("/api/sessions"))
    assert turns(two, session_id) == before
    store.cli("REPLICAOF", "NO", "ONE")
    assert turns(two, session_id) == before

    # A full store (no eviction) refuses writes; the stored session stays as it was.
    store.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    store.cli("CONFIG", "SET", "maxmemory", "1mb")
    junk = "x" * 20_000
    for index in range(1_000):
        if store.cli("SET", f"junk:{index}", junk, db=1).startswith("OOM"):
            break
    assert_store_unavailable(send(two, session_id, "while full"))
    store.cli("FLUSHDB", db=1)
    store.cli("CONFIG", "SET", "maxmemory", "0")
    assert turns(one, session_id) == before

    # A flushed script cache: the next write does not notice.
    store.cli("SCRIPT", "FLUSH")
    sent = send(one, session_id, "after the flush")
    assert sent.status_code == 200, sent.text
    seed = sent.json()["seed"]

    # Restarted empty: every pooled connection is dead; the first request still succeeds, and
    # the session comes back from the seed its client holds.
    store.restart_empty()
    for client in (two, one):
        read = client.get(f"/api/sessions/{session_id}", headers={SEED_HEADER: seed})
        assert read.status_code == 200, read.text
        assert [turn["text"] for turn in read.json()["turns"]][-2:][0] == "after the flush"
    assert send(two, session_id, "after the restart").status_code == 200


# The stateful fix: realtime owners and API instances of one generated project, in production,
# on a private Redis of their own.

LEASE_SECONDS = 15  # the template's default: owners beat every 5 s


@dataclass
class Stateful:
    """A generated stateful project's processes: the development upstream, realtime owners and
    API instances, each logging to a file of its own."""

    project: Path
    store: PrivateRedis
    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def spawn(self, name: str, app: str, **env: str) -> httpx.Client:
        """Start `app` (a `module:app` for uvicorn, or a module with a command of its own)."""
        port = free_port()
        python = str(self.project / ".venv" / "bin" / "python")
        module = ["-m", "uvicorn", f"{PACKAGE}.{app}"] if ":" in app else ["-m", f"{PACKAGE}.{app}"]
        command = [python, *module, "--port", str(port), "--no-access-log"]
        if app == "realtime":
            env["REALTIME_PUBLIC_URL"] = f"ws://127.0.0.1:{port}"
        with (self.logs / f"{name}.log").open("w") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=self.project,
                env=self.env | {"INSTANCE_NAME": name} | env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = self.clients[name] = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
        return client

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def stateful_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = generate(tmp_path_factory.mktemp("stateful") / "app", fix="stateful")
    uv(project, "sync")
    return project


@pytest.fixture
def stateful(stateful_project: Path, tmp_path: Path) -> Iterator[Stateful]:
    """The stateful project's environment and a private Redis; the test starts its processes."""
    assert shutil.which("redis-server"), "run `python3 tasks.py test`: it installs redis-server"
    store = PrivateRedis(free_port(), tmp_path)
    python = str(stateful_project / ".venv" / "bin" / "python")
    keygen = subprocess.run(
        [python, "-m", PACKAGE, "keygen"], capture_output=True, text=True, check=True
    )
    dropped = {"VIRTUAL_ENV", "REDIS_URL", "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped} | {
        "APP_ENV": "production",
        "REDIS_URL": f"redis://127.0.0.1:{store.port}/0",
        "SESSION_KEYS": keygen.stdout.strip(),
        "LEASE_SECONDS": str(LEASE_SECONDS),
    }
    deployment = Stateful(stateful_project, store, tmp_path, env)
    try:
        yield deployment
    finally:
        deployment.stop()
        store.stop()


def start_deployment(stateful: Stateful, owners: int, apis: int) -> None:
    """The development upstream, then `owners` realtime owners and `apis` API instances."""
    upstream = stateful.spawn("upstream", "dev_upstream:app")
    wait_until_up(upstream)
    address = str(upstream.base_url).replace("http://", "ws://").rstrip("/") + "/v1/realtime"
    stateful.env["UPSTREAM_URL"] = address
    started = [stateful.spawn(f"realtime-{n}", "realtime") for n in range(1, owners + 1)]
    started += [stateful.spawn(f"api-{n}", "main:app") for n in range(1, apis + 1)]
    for client in started:
        wait_until_up(client)


def test_stateful_owners_take_their_sessions_back_within_2_s_of_a_long_outage(
    stateful: Stateful,
) -> None:
    stateful.store.start()
    start_deployment(stateful, owners=3, apis=2)
    api = [stateful.clients["api-1"], stateful.clients["api-2"]]
    owners = [stateful.clients[f"realtime-{n}"] for n in (1, 2, 3)]
    # Six sessions, two on each owner, each live there (it holds their upstream connections).
    sessions = []
    for number in range(6):
        created = api[number % 2].post("/api/sessions")
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        assert send(api[number % 2], session_id, "before").status_code == 200
        sessions.append(session_id)
    assert all(health.get("/healthz").json()["live"] == 2 for health in owners)

    # Down longer than the lease: every owner's lease lapses while it cannot renew it.
    down = stateful.store.shut_down()
    for client in [*api, *owners]:
        health = client.get("/healthz")
        assert is_store_unavailable(health), health.text
    time.sleep(max(0.0, LEASE_SECONDS + 1 - (time.monotonic() - down)))
    stateful.store.start()
    back = time.monotonic()

    # Every session is routable again within 2 s, with no process restarted.
    waiting = set(sessions)
    while waiting and time.monotonic() - back < 5:
        for session_id in list(waiting):
            if send(api[0], session_id, "after").status_code == 200:
                waiting.discard(session_id)
        time.sleep(0.05)
    routable_after = time.monotonic() - back
    assert not waiting, f"{len(waiting)} sessions not routable 5 s after the store returned"
    assert routable_after <= 2, f"routable {routable_after:.1f} s after the store returned"
    # Their owners kept them live: no session was moved or lost.
    assert [health.get("/healthz").json()["live"] for health in owners] == [2, 2, 2]
    for session_id in sessions:
        assert turns(api[1], session_id)[-2:] == ["after", 'Message 2 received: "after"']


def test_a_realtime_instance_started_while_the_store_is_down_waits_and_registers_once_back(
    stateful: Stateful,
) -> None:
    stateful.store.start()
    start_deployment(stateful, owners=0, apis=1)
    stateful.store.shut_down()
    late = stateful.spawn("realtime-late", "realtime")

    # Up, and saying why it takes no session: one log line naming the store, and 503 problems.
    health = wait_until_answering(stateful, "realtime-late")
    assert is_store_unavailable(health), health.text
    assert health.json()["instance"] == "realtime-late"
    said = [line for line in stateful.log("realtime-late").splitlines() if "unreachable" in line]
    assert len(said) == 1, stateful.log("realtime-late")
    assert f"127.0.0.1:{stateful.store.port}" in said[0] and "registers" in said[0]
    assert stateful.processes["realtime-late"].poll() is None

    # Back: within 2 s the late owner has registered and takes new sessions.
    stateful.store.start()
    back = time.monotonic()
    api = stateful.clients["api-1"]
    while (created := api.post("/api/sessions")).status_code != 201:
        assert time.monotonic() - back < 2, created.text
        time.sleep(0.05)
    address = str(late.base_url).replace("http://", "ws://").rstrip("/")
    assert created.json()["connect"]["url"].startswith(address)
    assert late.get("/healthz").status_code == 200
    assert "store is back; registered again" in stateful.log("realtime-late")


def test_a_read_only_or_full_store_gives_503_problems_on_every_stateful_route(
    stateful: Stateful,
) -> None:
    stateful.store.start()
    start_deployment(stateful, owners=2, apis=1)
    api = stateful.clients["api-1"]
    owners = [stateful.clients["realtime-1"], stateful.clients["realtime-2"]]
    session_id = api.post("/api/sessions").json()["session_id"]
    assert send(api, session_id, "before").status_code == 200
    path = f"/api/sessions/{session_id}"
    changes = [
        ("POST", "/api/sessions", None),
        ("POST", f"{path}/messages", {"text": "refused"}),
        ("DELETE", path, None),
    ]

    def every_change_is_refused() -> None:
        for method, url, body in changes:
            refused = api.request(method, url, json=body)
            assert is_store_unavailable(refused), refused.text
        # What changes nothing may still answer (a resume finds the owner alive: a new token).
        answers = [api.get(path), api.post(f"{path}/resume")]
        answers += [owner.get("/healthz") for owner in owners]
        for answer in answers:
            assert answer.status_code == 200 or is_store_unavailable(answer), answer.text

    # A replica: read-only.
    stateful.store.cli("REPLICAOF", "127.0.0.1", str(free_port()))
    every_change_is_refused()
    stateful.store.cli("REPLICAOF", "NO", "ONE")

    # Full, with no eviction.
    stateful.store.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    stateful.store.cli("CONFIG", "SET", "maxmemory", "1mb")
    junk = "x" * 20_000
    for index in range(1_000):
        if stateful.store.cli("SET", f"junk:{index}", junk, db=1).startswith("OOM"):
            break
    every_change_is_refused()
    stateful.store.cli("FLUSHDB", db=1)
    stateful.store.cli("CONFIG", "SET", "maxmemory", "0")

    # Nothing was changed, and the deployment takes sessions again.
    assert turns(api, session_id) == ["before", 'Message 1 received: "before"']
    assert api.post("/api/sessions").status_code == 201
    assert api.post(f"{path}/resume").status_code == 200


def is_store_unavailable(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 503
        and answer.headers["content-type"] == "application/problem+json"
        and answer.json()["code"] == "store_unavailable"
        and int(answer.headers["Retry-After"]) > 0
    )


def wait_until_answering(stateful: Stateful, name: str) -> httpx.Response:
    """The first /healthz answer of process `name`, which is still starting."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return stateful.clients[name].get("/healthz")
        except httpx.TransportError:
            exited = stateful.processes[name].poll()
            assert exited is None, f"{name} exited ({exited}):\n{stateful.log(name)[-2000:]}"
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.1)
