"""Shared helpers: copy the template with a full set of answers, as a user would."""

import os
import re
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import copier
import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every answer, spelled out, so each test changes exactly one thing.
DEFAULTS: dict[str, Any] = {
    "project_name": "Session App",
    "package_name": "session_app",
    "distribution_name": "session-app",
    "description": "A test project.",
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.com",
    "python_version": "3.11",
    "fix": "kv_seed",
    "store_backend": "redis",
    "seed_encryption": True,
    "seed_in_query": False,
    "session_ttl_hours": 24,
    "cluster_size": 3,
}


def generate(destination: Path, omit: tuple[str, ...] = (), **answers: Any) -> Path:
    """`copier copy` of this repository's HEAD (plus uncommitted changes), without --trust.

    `omit` leaves answers out, so that their computed defaults apply.
    """
    data = {k: v for k, v in {**DEFAULTS, **answers}.items() if k not in omit}
    with warnings.catch_warnings():
        # Copier warns that a work tree with uncommitted changes is being copied: expected here.
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(ROOT),
            destination,
            data=data,
            defaults=True,
            unsafe=False,
            vcs_ref="HEAD",
            quiet=True,
        )
    return destination


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("these tests need a real Redis: run `python3 tasks.py test`, or set REDIS_URL")
    return url


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """A node of a Redis Cluster (3 masters, 3 replicas), shared by the tests that only use it."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if not url:
        pytest.fail(
            "these tests need a Redis Cluster: run `python3 tasks.py test`, or set "
            "REDIS_CLUSTER_URL to a node of one"
        )
    return url


def uv(project: Path, *args: str, **env: str) -> str:
    """Run `uv` in a generated project, in its own venv, as its new user would; fail with the
    output if the command fails. Keyword arguments set environment variables; REDIS_URL is
    passed only when given."""
    # PYTHONDONTWRITEBYTECODE is dropped too: a user's Python caches bytecode, and without it
    # every process the generated suite starts compiles its dependencies again.
    dropped = {"VIRTUAL_ENV", "REDIS_URL", "REDIS_CLUSTER_URL", "PYTHONDONTWRITEBYTECODE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    result = subprocess.run(
        ["uv", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=base | env,
        check=False,
        timeout=1_200,  # a generated suite takes about two minutes; a hang must not stall CI
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"`uv {' '.join(args)}` failed:\n{output[-6000:]}"
    return output


def assert_all_passed(pytest_output: str) -> None:
    """The closing line of a pytest run: tests passed, and none failed or was skipped."""
    summary = pytest_output.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert "failed" not in summary and "skipped" not in summary and "error" not in summary, summary


def passes_its_own_checks_and_suite(project: Path, redis_url: str, *tests: str) -> None:
    """What a new user of a generated project runs: install, lint, type-check, and the
    multi-instance suite (or only its `tests`, paths under the project) against the Redis at
    `redis_url`, every test passing and none skipped."""
    uv(project, "sync")
    uv(project, "run", "ruff", "check", ".")
    uv(project, "run", "ruff", "format", "--check", ".")
    uv(project, "run", "mypy")
    output = uv(project, "run", "pytest", *tests, REDIS_URL=redis_url)
    assert "session store: REDIS_URL" in output
    assert_all_passed(output)


JINJA_LEFTOVER = re.compile(r"\{\{|\{%|\{#|\.jinja$")


def rendered_files(project: Path) -> list[Path]:
    return [path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts]


def assert_fully_rendered(project: Path) -> None:
    """No generated file is empty or keeps Jinja in its name or text."""
    files = rendered_files(project)
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert text.strip(), f"{path.relative_to(project)} is empty"
        assert not JINJA_LEFTOVER.search(path.name), f"{path.name} kept Jinja in its name"
        leftovers = [line for line in text.splitlines() if "{{" in line or "{%" in line]
        assert not leftovers, f"{path.relative_to(project)} kept Jinja: {leftovers[:3]}"


# Rough seconds each slow test takes on a 2-core machine, by the start of its node id or its
# module (the first match counts). The suite runs the slowest first, and pytest-xdist hands
# tests out one at a time (tasks.py), so the long generated suites run side by side on every
# worker and the short tests fill the gaps, instead of one long suite running alone at the end.
COST_SECONDS = {
    "test_stateful.py::test_the_stateful_project_passes_its_suite_on_a_redis_cluster": 170,
    "test_client_direct.py::test_the_generated_project_passes_its_own_checks_and_suite[local]": 170,
    "test_stateful.py::test_the_stateful_project_passes_its_own_checks_and_suite": 160,
    "test_generated_projects.py::test_the_generated_project_passes_its_suite_on_a_redis": 150,
    "test_cli_new.py::test_setup_installs_and_runs_the_generated_suite": 140,
    "test_generated_projects.py::test_the_generated_project_passes_its_own_checks": 130,
    "test_client_direct.py::test_the_generated_project_passes_its_own_checks_and_suite": 60,
    "test_update.py::test_an_update_from_the_previous_release_keeps_the_users_edits": 50,
    "test_store_faults.py": 20,
    "test_redis_cluster.py": 20,
    "test_probe.py::test_each_generated_projects_cluster_passes": 20,
    "test_update.py::test_sessions_created_before": 20,
    "test_update.py": 10,
    "test_cli_new.py::test_the_guide": 8,
    "test_deploy.py": 5,
    "test_client_direct.py::test_it_starts_on_a_redis_cluster": 10,
    "test_stateful.py::test_a_stateful_session_stored_before": 6,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def cost(item: pytest.Item) -> int:
        node = f"{item.path.name}::{item.name}"
        return next((s for start, s in COST_SECONDS.items() if node.startswith(start)), 0)

    items.sort(key=cost, reverse=True)


@contextmanager
def app_instances(project: Path, env: dict[str, str], count: int) -> Iterator[list[str]]:
    """`count` uvicorn processes of a generated app (installed with `uv sync`), as a deploy
    runs them; yields their base URLs and stops them afterwards."""
    python = project / ".venv" / "bin" / "python"
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "VIRTUAL_ENV")}
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for number in range(count):
            port = free_port()
            command = [str(python), "-m", "uvicorn", "session_app.main:app", "--port", str(port)]
            instance_env = environment | env | {"INSTANCE_NAME": f"instance-{number}"}
            processes.append(
                subprocess.Popen([*command, "--no-access-log"], cwd=project, env=instance_env)
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{url} did not become healthy"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
