"""Every supported combination of answers, generated, installed in its own venv, and put
through its own tool chain and multi-instance test suite against a real Redis and Chromium."""

from itertools import product
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_all_passed, generate, uv

COMBINATIONS: list[dict[str, Any]] = [
    {"store_backend": store, "seed_encryption": encryption, "seed_in_query": in_query}
    for store, encryption, in_query in product(("redis", "upstash"), (True, False), (False, True))
]


def combination_id(answers: dict[str, object]) -> str:
    return "-".join(f"{k}={v}" for k, v in answers.items())


@pytest.mark.matrix
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_generated_project_passes_its_own_checks_and_suite(
    tmp_path: Path, redis_url: str, answers: dict[str, Any]
) -> None:
    project = generate(tmp_path / "app", **answers)
    uv(project, "sync")
    uv(project, "run", "ruff", "check", ".")
    uv(project, "run", "ruff", "format", "--check", ".")
    uv(project, "run", "mypy")

    output = uv(project, "run", "pytest", REDIS_URL=redis_url)
    assert "session store: REDIS_URL" in output
    assert_all_passed(output)
