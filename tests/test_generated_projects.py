"""Every supported combination of answers, generated, installed in its own venv, and put
through its own tool chain and multi-instance test suite against a real Redis and Chromium."""

import os
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from .conftest import generate

COMBINATIONS: list[dict[str, Any]] = [
    {"store_backend": store, "seed_encryption": encryption, "seed_in_query": in_query}
    for store, encryption, in_query in product(("redis", "upstash"), (True, False), (False, True))
]


def combination_id(answers: dict[str, object]) -> str:
    return "-".join(f"{k}={v}" for k, v in answers.items())


def uv(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `uv` in the generated project and fail with its output if the command fails."""
    result = subprocess.run(
        ["uv", *args], cwd=project, capture_output=True, text=True, env=env, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"`uv {' '.join(args)}` failed:\n{output[-6000:]}"
    return output


@pytest.mark.matrix
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_generated_project_passes_its_own_checks_and_suite(
    tmp_path: Path, redis_url: str, answers: dict[str, Any]
) -> None:
    project = generate(tmp_path / "app", **answers)
    # A fresh venv of the project's own, as `uv sync` makes it for a new user.
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PYTHON"}}
    uv(project, "sync", env=env)
    uv(project, "run", "ruff", "check", ".", env=env)
    uv(project, "run", "ruff", "format", "--check", ".", env=env)
    uv(project, "run", "mypy", env=env)

    output = uv(project, "run", "pytest", env={**env, "REDIS_URL": redis_url})
    assert "session store: REDIS_URL" in output
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
