"""A generated KV + seed project in production, on several instances, while its Redis goes wrong:
read-only, full, its script cache flushed, restarted empty. Every failure is a 503
`store_unavailable` problem that changed nothing, and the first request once Redis is back
succeeds. The Redis here is private: it is faulted on purpose."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from .conftest import free_port, generate, uv

pytestmark = pytest.mark.matrix

PACKAGE = "session_app"
SEED_HEADER = "X-Session-Seed"


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
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

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def store() -> Iterator[PrivateRedis]:
    assert shutil.which("redis-server"), "run `python3 tasks.py test`: it installs redis-server"
    server = PrivateRedis(free_port())
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
