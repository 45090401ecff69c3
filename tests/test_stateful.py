"""The stateful-server fix: generated, checked, and put through its own suite."""

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    assert_fully_rendered,
    free_port,
    generate,
    passes_its_own_checks_and_suite,
    uv,
)

STATEFUL: dict[str, Any] = {"fix": "stateful"}


def read(project: Path, path: str) -> str:
    return (project / path).read_text()


def test_the_stateful_project_has_its_own_files_and_none_of_the_seed(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", **STATEFUL)
    assert_fully_rendered(project)
    package = project / "src" / "session_app"
    owned = ["dev_upstream.py", "sessions/tokens.py", "sessions/registry.py", "routes/deps.py"]
    owned += [f"realtime/{name}.py" for name in ("__main__", "app", "owner", "live", "sockets")]
    for name in owned:
        assert (package / name).is_file(), name
    for name in ["sessions/seed.py", "sessions/upstash.py", "sessions/minter.py"]:
        assert not (package / name).exists(), name
    dependencies = read(project, "pyproject.toml").split("[dependency-groups]")[0]
    assert '"itsdangerous' in dependencies and '"websockets' in dependencies
    assert "zstandard" not in dependencies and "cryptography" not in dependencies
    assert "seed" not in read(project, "src/session_app/settings.py").lower()


def test_the_stateful_answers_reach_the_generated_code(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", **STATEFUL, realtime_instances=3, lease_seconds=20)
    assert "REALTIME_INSTANCES = 3" in read(project, "src/session_app/dev_services.py")
    assert "default=20, ge=3" in read(project, "src/session_app/settings.py")
    answers = read(project, ".copier-answers.yml")
    assert "fix: stateful" in answers and "lease_seconds: 20" in answers
    assert "seed_encryption" not in answers, "questions of another fix are not asked or stored"


@pytest.mark.parametrize(
    ("answer", "value", "message"),
    [
        ("realtime_instances", 1, "2 to 8 realtime instances"),
        ("realtime_instances", 9, "2 to 8 realtime instances"),
        ("lease_seconds", 2, "3 to 120 seconds"),
        ("lease_seconds", 121, "3 to 120 seconds"),
    ],
)
def test_stateful_validators_explain_bad_answers(
    tmp_path: Path, answer: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "app", **STATEFUL, **{answer: value})


@pytest.mark.matrix
def test_the_stateful_project_passes_its_own_checks_and_suite(
    tmp_path: Path, redis_url: str
) -> None:
    project = generate(tmp_path / "app", **STATEFUL)
    passes_its_own_checks_and_suite(project, redis_url)


def test_the_stateful_services_stop_at_startup_on_a_redis_cluster_and_say_why(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    """The owner registry needs one Redis (its scripts span owners' and sessions' keys). Pointed
    at a Redis Cluster, the API and the realtime service each stop at startup with a message
    that names the cause, instead of starting and answering every request 503
    `store_unavailable` as if the store were down."""
    project = generate(tmp_path / "app", **STATEFUL)
    uv(project, "sync", "--quiet")
    python = str(project / ".venv" / "bin" / "python")
    keygen = subprocess.run(
        [python, "-m", "session_app", "keygen"], capture_output=True, text=True, check=True
    )
    dropped = {"VIRTUAL_ENV", "REDIS_URL", "REDIS_CLUSTER_URL"}
    environment = {k: v for k, v in os.environ.items() if k not in dropped} | {
        "APP_ENV": "development",
        "REDIS_URL": redis_cluster_url,
        "SESSION_KEYS": keygen.stdout.split()[-1],
    }
    for service in (["uvicorn", "session_app.main:app"], ["session_app.realtime"]):
        port = str(free_port())
        started = subprocess.run(
            [python, "-m", *service, "--port", port],
            cwd=project,
            env=environment | {"REALTIME_PUBLIC_URL": f"ws://127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert started.returncode != 0, f"{service} started on a Redis Cluster"
        assert "is a node of a Redis Cluster" in started.stderr, started.stderr[-3000:]
        assert "Point REDIS_URL at a single Redis" in started.stderr, started.stderr[-3000:]
