"""The local cluster: several real uvicorn instances on one shared store, behind a round-robin
door, so that every run on your machine behaves like a multi-instance deployment.

The store is the Redis at REDIS_URL when set, else an embedded Redis-protocol server that lives
as long as the cluster (development only: it keeps nothing on disk).
"""

import base64
import itertools
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from dotenv import dotenv_values, set_key
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

PACKAGE = __name__.rpartition(".")[0]
ENV_FILE = Path(".env")


@dataclass
class Instance:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def start_instance(
    name: str,
    port: int,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    cwd: Path | None = None,
) -> Instance:
    """Start `uvicorn <package>.main:app` in its own process; see wait_healthy()."""
    command = [sys.executable, "-m", "uvicorn", f"{PACKAGE}.main:app"]
    command += ["--host", host, "--port", str(port), "--no-access-log"]
    # Our own interpreter running our own module: no untrusted input reaches the command.
    environment = {**os.environ, **env, "INSTANCE_NAME": name}
    process = subprocess.Popen(command, env=environment, cwd=cwd)  # noqa: S603
    return Instance(name=name, url=f"http://{host}:{port}", process=process)


def wait_healthy(instances: list[Instance], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for instance in instances:
        while True:
            if instance.process.poll() is not None:
                raise RuntimeError(f"{instance.name} exited with {instance.process.returncode}")
            try:
                if httpx.get(f"{instance.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{instance.name} did not become healthy in {timeout:.0f} s")
            time.sleep(0.1)


@contextmanager
def embedded_store() -> Iterator[str]:
    """A Redis-protocol server in this process, for development and tests only."""
    from fakeredis import TcpFakeServer  # a development dependency, never used in production

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()


def round_robin_door(upstreams: list[str]) -> Starlette:
    """An ASGI app that sends each request to the next instance, streaming both ways."""
    turn = itertools.cycle(upstreams)
    client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "host"}

    async def forward(request: Request) -> StreamingResponse:
        url = next(turn) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k not in hop_by_hop]
        body = await request.body()
        outgoing = client.build_request(request.method, url, headers=headers, content=body)
        upstream = await client.send(outgoing, stream=True)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers={k: v for k, v in upstream.headers.items() if k not in hop_by_hop},
            background=BackgroundTask(upstream.aclose),
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    routes = [Route("/{path:path}", forward, methods=methods)]
    return Starlette(routes=routes, lifespan=lifespan)


def run(instances: int, port: int, host: str) -> int:
    """Start the cluster in the foreground; Ctrl+C stops every process it started."""
    config = {**dotenv_values(ENV_FILE), **os.environ}
    production = config.get("APP_ENV") == "production"
    env: dict[str, str] = {}
    if not config.get("SESSION_KEYS"):
        if production:
            print("error: set SESSION_KEYS; the cluster makes keys only for development")
            return 2
        env["SESSION_KEYS"] = new_key()
        # One key in .env, shared by every instance: a key made per process would make each
        # instance refuse the others' seeds.
        set_key(ENV_FILE, "SESSION_KEYS", env["SESSION_KEYS"], quote_mode="never")
        print(f"Wrote a new shared development key to {ENV_FILE.resolve()}")
    store_url = config.get("REDIS_URL") or config.get("KV_URL")
    if not store_url and production:
        print("error: set REDIS_URL; the embedded store is for development only")
        return 2
    with _store(store_url) as url:
        env["REDIS_URL"] = url
        print(f"Store: {'embedded (development only)' if not store_url else 'REDIS_URL'}")
        ports = [port + number for number in range(1, instances + 1)]
        started = [
            start_instance(f"instance-{n}", p, env, host) for n, p in enumerate(ports, start=1)
        ]
        try:
            print(f"Starting {instances} instances on ports {ports[0]}-{ports[-1]}...")
            wait_healthy(started)
            for instance in started:
                print(f"  {instance.name}  {instance.url}")
            print(f"Round-robin door: http://{host}:{port}  (demo page at /, Ctrl+C stops all)")
            door = round_robin_door([instance.url for instance in started])
            uvicorn.run(door, host=host, port=port, log_level="warning")
        except RuntimeError as error:
            print(f"error: {error}")
            return 1
        finally:
            for instance in started:
                instance.stop()
    return 0


@contextmanager
def _store(url: str | None) -> Iterator[str]:
    if url:
        yield url
    else:
        with embedded_store() as embedded:
            yield embedded
