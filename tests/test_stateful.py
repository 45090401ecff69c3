"""The stateful-server fix: generated, checked, and put through its own suite."""

from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    assert_fully_rendered,
    generate,
    passes_its_own_checks_and_suite,
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


@pytest.mark.matrix
def test_the_stateful_project_passes_its_suite_on_a_redis_cluster(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    """The same suite, with REDIS_URL at one node of a Redis Cluster (3 masters, 3 replicas):
    the API and the realtime service find the cluster themselves, every session's keys share
    its hash slot and the owners' keys the fleet's, so every script runs on one node."""
    project = generate(tmp_path / "app", **STATEFUL)
    passes_its_own_checks_and_suite(project, redis_cluster_url)
