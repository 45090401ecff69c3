#!/usr/bin/env python3
"""The repository's two entry points, runnable with nothing but Python 3.11+ and git:

    python3 tasks.py demo [DEST] [--port P]   generate a project with defaults and run its cluster
    python3 tasks.py test                     lint, type-check, build the docs, run every test

Everything else is installed into `.venv` on first use. The test suite needs a real Redis and
a headless Chromium, checks generated compose files with Docker Compose, and fetches the
scanner's real-code corpus from PyPI and npm (pip, from `.venv`, and `npm pack`): it starts its
own `redis-server` on a free port (unless REDIS_URL is set) and a local Redis Cluster of six
more (3 masters, 3 replicas; unless REDIS_CLUSTER_URL is set), and, when run as root on Debian or
Ubuntu, installs the `redis-server`, `chromium`, `npm` and `docker-compose` packages if they are
missing (`docker-compose` only where the `docker compose` plugin is not installed).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
UV = BIN / "uv"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def bootstrap() -> None:
    """Create .venv with uv in it, then let uv install the locked development environment."""
    if not UV.exists():
        step("Creating .venv and installing uv")
        venv.create(VENV, with_pip=True)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    step("Installing the development environment (uv sync)")
    run(UV, "sync", "--locked", "--quiet")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def demo(destination: Path, port: int) -> None:
    # Checked before anything is installed or generated: a busy port is a one-line fix.
    if not port_is_free(port):
        sys.exit(f"error: port {port} is in use; pick another with --port, e.g. --port {port + 80}")
    bootstrap()
    answers = destination / ".copier-answers.yml"
    if answers.exists():
        step(f"Using the project already generated in {destination} (delete it to regenerate)")
    elif destination.exists() and any(destination.iterdir()):
        sys.exit(f"error: {destination} exists and is not a generated project; pick another path")
    else:
        # HEAD, not the newest release tag: the demo shows this checkout as it is.
        step(f"Generating a project with default answers in {destination}")
        run(BIN / "copier", "copy", "--defaults", "--vcs-ref", "HEAD", ROOT, destination)
    package = next(
        line.split(":", 1)[1].strip()
        for line in answers.read_text().splitlines()
        if line.startswith("package_name:")
    )
    step("Installing the generated project (uv sync)")
    run(UV, "sync", "--quiet", cwd=destination)
    step(f"uv and copier are in {BIN}; `. .venv/bin/activate` puts them on your PATH")
    step(f"Starting the local cluster on http://127.0.0.1:{port} (Ctrl+C stops it)")
    run(UV, "run", "python", "-m", package, "cluster", "--port", str(port), cwd=destination)


def ensure_program(program: str, package: str) -> None:
    if shutil.which(program):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        step(f"Installing {package} with apt-get (the test suite needs it)")
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=quiet)
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", package, env=quiet)
        return
    sys.exit(
        f"error: the test suite needs `{program}`: install the `{package}` package "
        f"(Debian/Ubuntu: sudo apt-get install {package})"
    )


def has_compose_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    """A private, memory-only Redis for this run, so no test touches anyone else's data."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    ensure_program("redis-server", "redis-server")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    server = subprocess.Popen(command)
    try:
        wait_for_port(port, "redis-server")
        step(f"Redis for this run: 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def wait_for_port(port: int, what: str) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"error: {what} did not start on port {port}")


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (the port + 10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10_000 < 65_536 and port not in ports and port_is_free(port + 10_000):
            ports.append(port)
    return ports


def redis_cli(port: int, *command: str) -> str:
    probe = subprocess.run(
        ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, check=False
    )
    return probe.stdout


def cluster_settled(port: int, masters: int) -> bool:
    """The node says the cluster is ok, sees every replica as one (right after `create`, some
    nodes still take a replica for an empty master) and, if a replica, has its master's data
    (a replica that never synced cannot take over)."""
    if "cluster_state:ok" not in redis_cli(port, "cluster", "info"):
        return False
    roles = [line.split()[2] for line in redis_cli(port, "cluster", "nodes").splitlines()]
    replication = redis_cli(port, "info", "replication")
    synced = "role:master" in replication or "master_link_status:up" in replication
    return synced and sum("slave" in role for role in roles) == masters


@contextmanager
def local_redis_cluster(
    masters: int = 3, *, quiet: bool = False
) -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    """A memory-only Redis Cluster on free ports: `masters` masters with one replica each, every
    node reporting `cluster_state:ok`; yields each node's process by its port and stops every
    node afterwards. Node timeout 2 s, so a replica takes over a dead master within seconds;
    a dead master's slots fail alone (cluster-require-full-coverage no), the others are served.
    """
    ensure_program("redis-server", "redis-server")
    say = (lambda message: None) if quiet else step
    ports = cluster_ports(masters * 2)
    nodes: dict[int, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="redis-cluster-") as workdir:
        try:
            say(f"Starting a local Redis Cluster: {masters} masters, {masters} replicas")
            for port in ports:
                command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
                command += ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                command += ["--cluster-require-full-coverage", "no"]
                # Replicas sync at once (the default waits 5 s for more replicas to join).
                command += ["--repl-diskless-sync-delay", "0"]
                command += ["--cluster-config-file", f"nodes-{port}.conf", "--dir", workdir]
                command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
                nodes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            for port in ports:
                wait_for_port(port, "a Redis Cluster node")
            create = ["redis-cli", "--cluster", "create"]
            create += [f"127.0.0.1:{port}" for port in ports]
            create += ["--cluster-replicas", "1", "--cluster-yes"]
            created = subprocess.run(create, capture_output=True, text=True, check=False)
            if created.returncode != 0:
                sys.exit(f"error: redis-cli --cluster create failed:\n{created.stdout}")
            deadline = time.monotonic() + 30
            while not all(cluster_settled(port, masters) for port in ports):
                if time.monotonic() > deadline:
                    sys.exit("error: the local Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.1)
            say(f"Redis Cluster for this run: 127.0.0.1 ports {', '.join(map(str, ports))}")
            yield nodes
        finally:
            for node in nodes.values():
                node.terminate()
            for node in nodes.values():
                node.wait()


@contextmanager
def redis_cluster() -> Iterator[str]:
    """The Redis Cluster the suite's cluster tests use: REDIS_CLUSTER_URL, else a local one."""
    if os.environ.get("REDIS_CLUSTER_URL"):
        yield os.environ["REDIS_CLUSTER_URL"]
        return
    with local_redis_cluster() as nodes:
        yield f"redis://127.0.0.1:{next(iter(nodes))}"


def test(pytest_args: list[str]) -> None:
    bootstrap()
    if not os.environ.get("CHROMIUM_PATH"):
        ensure_program("chromium", "chromium")
    ensure_program("npm", "npm")  # `npm pack` fetches the scanner's real-code corpus
    if not has_compose_plugin():
        # The template tests run `config` on every generated compose.yaml.
        ensure_program("docker-compose", "docker-compose")
    step("ruff and mypy")
    run(UV, "run", "ruff", "check", ".")
    run(UV, "run", "ruff", "format", "--check", ".")
    run(UV, "run", "mypy")
    step("The documentation (mkdocs build --strict)")
    docs = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # a banner about a future MkDocs, not ours
    run(
        UV,
        "run",
        "mkdocs",
        "build",
        "--strict",
        "--quiet",
        "--site-dir",
        ROOT / "build" / "site",
        env=docs,
    )
    # Bytecode caching on, as a user's Python has it: with PYTHONDONTWRITEBYTECODE set (some CI
    # images set it), every uvicorn process a generated suite starts compiles FastAPI anew, which
    # doubles the run.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with redis_server() as url, redis_cluster() as cluster_url:
        step("The test suite")
        # Every core: most of the run is generated suites, each in processes of its own.
        # One test at a time to each worker, in the order the suite sorts them (slowest first):
        # xdist's default hands each worker a block of consecutive tests up front, which put
        # every long generated suite on the first worker.
        workers = (
            []
            if any(arg.startswith(("-n", "--numprocesses")) for arg in pytest_args)
            else ["-n", "auto", "--maxschedchunk", "1"]
        )
        environment |= {"REDIS_URL": url, "REDIS_CLUSTER_URL": cluster_url}
        run(UV, "run", "pytest", *workers, *pytest_args, env=environment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="generate a project and run its local cluster")
    demo_parser.add_argument(
        "destination", nargs="?", type=Path, default=ROOT / "build" / "demo-app"
    )
    demo_parser.add_argument(
        "--port", type=int, default=8000, help="the cluster's round-robin door (default 8000)"
    )
    test_parser = commands.add_parser("test", help="run the whole test suite")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    # parse_known_args: everything after `test` that is not ours goes to pytest, options too
    # (argparse's REMAINDER refuses a first argument that starts with a dash).
    args, rest = parser.parse_known_args()
    if args.command == "demo":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        demo(args.destination.resolve(), args.port)
    else:
        test([*rest, *args.pytest_args])


if __name__ == "__main__":
    main()
