"""The local cluster: several real uvicorn instances of the API behind a round-robin door, so
that every run on your machine behaves like a multi-instance deployment.

What the fix needs beside the API instances (its store, its development upstream) is started
by `dev_services.start()`, the one step that differs between fixes.
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
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

from .config import DEV_KEY_MARK, new_key

PACKAGE = __name__.rpartition(".")[0]
ENV_FILE = Path(".env")


class ClusterError(Exception):
    """The cluster cannot start; the message says why, in one line."""


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


def port_near(preferred: int, host: str) -> int:
    """`preferred` when it is free, so URLs are easy to guess; any free port when it is not."""
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            return free_port(host)
    return preferred


def listen(port: int, host: str) -> socket.socket:
    """A socket listening on host:port, held from now on.

    The process started on it takes it over (uvicorn's --fd), so no other process can take the
    port between our pick and its start, as an outgoing connection's ephemeral port can.
    """
    try:
        return socket.create_server((host, port))
    except OSError:
        raise ClusterError(f"port {port} on {host} is already in use") from None


def start_instance(
    name: str,
    port: int,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    cwd: Path | None = None,
    app: str = "main:app",
) -> Instance:
    """Start `uvicorn <package>.<app>` in its own process, on a socket bound here; see
    wait_healthy().

    An `app` without `:` is a module with a command of its own, which takes uvicorn's options:
    `python -m <package>.<app>`.
    """
    if ":" in app:
        command = [sys.executable, "-m", "uvicorn", f"{PACKAGE}.{app}"]
    else:
        command = [sys.executable, "-m", f"{PACKAGE}.{app}"]
    with listen(port, host) as listener:
        command += ["--fd", str(listener.fileno()), "--no-access-log"]
        # Our own interpreter running our own module: no untrusted input reaches the command.
        environment = {**os.environ, **env, "INSTANCE_NAME": name}
        process = subprocess.Popen(  # noqa: S603
            command, env=environment, cwd=cwd, pass_fds=[listener.fileno()]
        )
        # The child holds its own copy of the socket; ours closes here.
        url = f"http://{host}:{listener.getsockname()[1]}"
    return Instance(name=name, url=url, process=process)


def wait_healthy(instances: list[Instance], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for instance in instances:
        answer = "no answer"
        while True:
            if instance.process.poll() is not None:
                raise ClusterError(f"{instance.name} exited with {instance.process.returncode}")
            try:
                health = httpx.get(f"{instance.url}/healthz", timeout=1)
                if health.status_code == 200:
                    break
                # Its own words: e.g. which store it cannot reach, and why.
                answer = health.text
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{instance.name} was not healthy after {timeout:.0f} s ({answer})"
                )
            time.sleep(0.1)


def round_robin_door(upstreams: list[str]) -> Starlette:
    """An ASGI app that sends each request to the next instance, streaming both ways."""
    turn = itertools.cycle(upstreams)
    client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "host"}
    # The door's own server adds these; passing the instance's too would send them twice.
    added_by_door = hop_by_hop | {"date", "server"}

    async def forward(request: Request) -> StreamingResponse:
        url = next(turn) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k not in hop_by_hop]
        body = await request.body()
        outgoing = client.build_request(request.method, url, headers=headers, content=body)
        upstream = await client.send(outgoing, stream=True)
        response = StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        # Raw pairs, so repeated headers (several Set-Cookie) pass as they came.
        response.raw_headers = [
            (name, value)
            for name, value in upstream.headers.raw
            if name.decode("latin-1").lower() not in added_by_door
        ]
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    routes = [Route("/{path:path}", forward, methods=methods)]
    return Starlette(routes=routes, lifespan=lifespan)


def development_env(config: Mapping[str, str | None]) -> dict[str, str]:
    """SESSION_KEYS for every process: from the environment or .env, else one new key in .env.

    One key shared by every process: a key made per process would make each refuse what the
    others signed.
    """
    if config.get("SESSION_KEYS"):
        return {}
    if config.get("APP_ENV") == "production":
        raise ClusterError("set SESSION_KEYS; the cluster makes keys only for development")
    # Marked, so a production start that finds this key refuses it.
    key = DEV_KEY_MARK + new_key()
    set_key(ENV_FILE, "SESSION_KEYS", key, quote_mode="never")
    print(f"Wrote a new shared development key to {ENV_FILE.resolve()}")
    return {"SESSION_KEYS": key}


def run(instances: int, port: int, host: str, **options: int) -> int:
    """Start the cluster in the foreground; Ctrl+C stops every process it started.

    Ports: the door on `port`, API instances on port+1... (or any free port where one of those
    is taken); `dev_services` says where the fix's own processes go.
    """
    from . import dev_services

    config = {**dotenv_values(ENV_FILE), **os.environ}
    # uvicorn re-raises SIGTERM after its graceful shutdown; unwinding through `finally` instead
    # of dying at once is what stops every process this command started.
    signal.signal(signal.SIGTERM, _exit)
    started: list[Instance] = []
    with ExitStack() as stack:
        try:
            try:
                door_socket = stack.enter_context(listen(port, host))
            except ClusterError as error:
                # The door's port is the one a user typed, so never move it.
                raise ClusterError(f"{error}; pick another with --port") from None
            env = development_env(config)
            env |= dev_services.start(stack, config, env, port, host, started, **options)
            ports = [port_near(port + number, host) for number in range(1, instances + 1)]
            apis = [start_instance(f"api-{n}", p, env, host) for n, p in enumerate(ports, 1)]
            started += apis
            print(f"Starting {len(started)} processes...")
            wait_healthy(started)
            for instance in started:
                print(f"  {instance.name:12} {instance.url}")
            print(f"Round-robin door: http://{host}:{port}  (demo page at /, Ctrl+C stops all)")
            door = round_robin_door([instance.url for instance in apis])
            uvicorn.run(door, fd=door_socket.fileno(), log_level="warning")
        except ClusterError as error:
            print(f"error: {error}")
            return 1
        finally:
            for instance in reversed(started):
                instance.stop()
    return 0


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
