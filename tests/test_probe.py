"""`sessionfix probe URL` against real servers: the bug served by `uvicorn --workers 3` is
caught, each generated project's local cluster passes, and flow files are checked first."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import free_port, generate, uv

BROKEN_APP = Path(__file__).parent / "probe_apps"
FLOWS = 20


def sessionfix_probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionfix", "probe", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


@contextmanager
def running(command: list[str], cwd: Path, ready: str, env: dict[str, str]) -> Iterator[None]:
    """A server process, in its own process group, until the block ends; then SIGTERM, as
    Ctrl+C in a terminal would, and every process it started must be gone."""
    log = cwd / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not answers(ready):
            assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer at {ready}:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            stopped_cleanly = not group_alive(process.pid)
            if not stopped_cleanly:
                os.killpg(process.pid, signal.SIGKILL)
    assert stopped_cleanly, f"processes left running:\n{log.read_text()[-3000:]}"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def group_alive(group: int) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True


def environment_without(*names: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}


def serve_broken_app(workers: int, tmp_path: Path) -> tuple[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BROKEN_APP)]
    command += ["in_memory_sessions:app", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"
    return url, running(command, tmp_path, f"{url}/docs", dict(os.environ))


@pytest.fixture(scope="module")
def broken_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Sessions in a dict, served by three worker processes: the bug, as deployed."""
    url, server = serve_broken_app(3, tmp_path_factory.mktemp("broken"))
    with server:
        wait_for_workers(url, 3)
        yield url


def wait_for_workers(url: str, workers: int) -> None:
    """Until each worker has answered once: the first to start would otherwise take every
    connection and hide the others."""
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while len(seen) < workers:
        assert time.monotonic() < deadline, f"only {sorted(seen)} answered"
        seen.add(httpx.get(f"{url}/docs", timeout=2).headers["X-Instance"])


def test_the_bug_served_by_three_workers_is_caught(broken_deployment: str) -> None:
    result = sessionfix_probe(broken_deployment, "--flows", str(FLOWS))

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"sending real traffic to {broken_deployment}" in result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:8]}
    assert list(rows) == ["step", "create", "stream", "send", "read", "delete"]
    assert f"{FLOWS}/{FLOWS}" in rows["create"]
    assert any("404 (" in rows[step] for step in ("stream", "send", "read", "delete"))
    assert "Session not found" in result.stdout  # an example failure, with its body
    assert "Verdict: sessions-lost." in result.stdout


def test_the_json_report_counts_each_step(broken_deployment: str) -> None:
    result = sessionfix_probe(broken_deployment, "--flows", str(FLOWS), "--format", "json")

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "sessions-lost"
    assert report["flow"] == "sessions"
    assert report["flows"] == {"requested": FLOWS, "run": FLOWS, "created": FLOWS}
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["create", "stream", "send", "read", "delete"]
    assert steps["stream"]["request"] == "GET /api/sessions/{session_id}/events"
    assert steps["stream"]["stream"] is True
    for step in report["steps"]:
        assert step["attempted"] == FLOWS
        assert step["passed"] + step["failed"] == FLOWS
        assert sum(step["failures"].values()) == step["failed"]
    follow_ups = report["steps"][1:]
    assert sum(step["failures"].get("404", 0) for step in follow_ups) > 0
    assert sum(step["lost"] for step in follow_ups) == sum(step["failed"] for step in follow_ups)
    assert report["instance_header"] == "X-Instance"
    assert len(report["instances"]) == 3
    assert sum(report["instances"].values()) == sum(step["attempted"] for step in report["steps"])
    example = report["examples"][0]
    assert example["instance"] != example["created_on"]
    assert "Session not found" in example["excerpt"]


CHAT_FLOW = """
name: chat
create: {method: post, path: /api/sessions, expect: 201}
capture: {sid: session_id}
steps:
  - name: say
    method: POST
    path: /api/sessions/{sid}/messages
    body: {text: "hello {sid}"}
    expect: 200
  - name: transcript
    method: GET
    path: /api/sessions/{sid}
    expect_json: {/turns/0/text: "hello {sid}"}
"""


def test_a_flow_file_on_one_worker_passes_and_says_one_instance_proves_little(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "chat.yaml"
    flow.write_text(CHAT_FLOW)
    url, server = serve_broken_app(1, tmp_path)
    with server:
        result = sessionfix_probe(url, "--flow", str(flow), "--flows", "5")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 flows of 3 requests" in result.stderr
    assert "flow chat, 5 of 5 flows run" in result.stdout
    assert "transcript  GET /api/sessions/{sid}" in result.stdout
    verdict = " ".join(result.stdout.split()).partition("Verdict: ")[2]
    assert verdict.startswith("pass. All 10 follow-ups on 5 new sessions passed, but every ")
    assert "answer came from one instance" in verdict


def test_nothing_listening_is_inconclusive_and_stops_early() -> None:
    result = sessionfix_probe(f"http://127.0.0.1:{free_port()}", "--format", "json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "inconclusive"
    assert report["flows"]["run"] == 3
    assert report["steps"][0]["failures"] == {"cannot connect": 3}
    assert "No session could be created (cannot connect (3))" in report["summary"]


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ("steps: [", "is not valid YAML"),
        ("- just a list", "a flow is a mapping with `create` and `steps`"),
        ("create: {method: POST, path: /s}\n", "steps: Field required"),
        (
            "create: {method: POST, path: /s}\nsteps: [{name: a, method: FETCH, path: /s}]",
            "steps.0.method: Input should be 'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'",
        ),
        (
            "create: {method: POST, path: /s}\nsteps: [{name: a, method: GET, path: s}]",
            "steps.0.path: String should match pattern '^/'",
        ),
        (
            "create: {method: POST, path: /s}\nsteps: [{name: a, method: GET, path: /s, wait: 1}]",
            "steps.0.wait: Extra inputs are not permitted",
        ),
        (
            "create: {method: POST, path: /s}\nsteps: [{name: a, method: GET, path: '/s/{room}'}]",
            "step 'a' uses room, which capture does not define (captured: session_id)",
        ),
        (
            "create: {method: POST, path: /s}\n"
            "steps: [{name: a, method: GET, path: '/s/{session_id.__class__}'}]",
            "{session_id.__class__} is not a plain placeholder name",
        ),
        (
            "create: {method: POST, path: /s}\n"
            "steps: [{name: a, method: GET, path: /s}, {name: a, method: GET, path: /t}]",
            "each step needs its own name",
        ),
        (
            "create: {method: POST, path: /s}\n"
            "steps: [{name: a, method: GET, path: /s, expect: [200, 999]}]",
            "steps.0.expect.1: Input should be less than or equal to 599",
        ),
    ],
)
def test_an_invalid_flow_file_is_a_usage_error_before_any_request(
    tmp_path: Path, flow: str, message: str
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(flow)
    # Nothing listens there: a request sent would show as a connection failure.
    result = sessionfix_probe(f"http://127.0.0.1:{free_port()}", "--flow", str(path))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"sessionfix probe: error: {path}")
    assert message in result.stderr
    assert "real traffic" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["localhost:8000"], "'localhost:8000' is not an http:// or https:// URL"),
        (["http://127.0.0.1:1/?a=1"], "give the base URL, without ?query or #fragment"),
        (["http://127.0.0.1:1", "--flows", "0"], "--flows must be between 1 and 500"),
        (["http://127.0.0.1:1", "--flows", "501"], "--flows must be between 1 and 500"),
        (["http://127.0.0.1:1", "--timeout", "0"], "--timeout and --deadline must be positive"),
        (["http://127.0.0.1:1", "--flow", "no-such.yaml"], "cannot read no-such.yaml"),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    result = sessionfix_probe(*args)

    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("fix", ["kv_seed", "stateful", "client_direct"])
def test_each_generated_projects_cluster_passes(tmp_path: Path, fix: str) -> None:
    project = generate(tmp_path / "app", fix=fix)
    uv(project, "sync")
    port = free_port()
    door = f"http://127.0.0.1:{port}"
    # The embedded development store, as `python -m <package> cluster` runs with no REDIS_URL.
    env = environment_without("REDIS_URL", "VIRTUAL_ENV")
    # Every flow comes from this one address: room for all of them under the per-client limits.
    env |= {"SESSION_CREATE_RATE": "1000/minute", "MINT_RATE_PER_CLIENT": "1000/minute"}
    command = ["uv", "run", "python", "-m", "session_app", "cluster", "--port", str(port)]
    with running(command, project, f"{door}/healthz", env):
        result = sessionfix_probe(door, "--flows", str(FLOWS), "--format", "json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass"
    assert report["flow"] == ("tokens" if fix == "client_direct" else "sessions")
    assert report["flows"]["created"] == FLOWS
    follow_ups = report["steps"][1:]
    assert all(step["passed"] == step["attempted"] == FLOWS for step in follow_ups)
    assert set(report["instances"]) == {"api-1", "api-2", "api-3"}
