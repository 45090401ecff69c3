"""The KV + seed fix's answers, generated, installed in its own venv, and put through its own
tool chain and multi-instance test suite against a real Redis and Chromium.

The three yes/no answers that shape KV + seed's code (store backend, seed encryption, seed in
the query) are covered pairwise: every value of each meets every value of each other in some
project. Their code paths are independent of one another beyond pairs, and each full suite takes
a couple of minutes, so four projects stand in for all eight (one of them on a Redis Cluster)."""

from pathlib import Path
from typing import Any

import pytest

from .conftest import generate, passes_its_own_checks_and_suite

COMBINATIONS: list[dict[str, Any]] = [
    {"store_backend": store, "seed_encryption": encryption, "seed_in_query": in_query}
    for store, encryption, in_query in (
        ("redis", True, False),
        ("upstash", True, True),
        ("upstash", False, False),
    )
]
# The fourth combination runs on the Redis Cluster (the seed's options do not meet the store's
# topology in any code path).
ON_THE_CLUSTER: dict[str, Any] = {
    "store_backend": "redis",
    "seed_encryption": False,
    "seed_in_query": True,
}


def combination_id(answers: dict[str, object]) -> str:
    return "-".join(f"{k}={v}" for k, v in answers.items())


@pytest.mark.matrix
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_generated_project_passes_its_own_checks_and_suite(
    tmp_path: Path, redis_url: str, answers: dict[str, Any]
) -> None:
    project = generate(tmp_path / "app", **answers)
    passes_its_own_checks_and_suite(project, redis_url)


def test_the_generated_project_passes_its_suite_on_a_redis_cluster(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    """The same suite, with REDIS_URL at one node of a Redis Cluster (3 masters, 3 replicas):
    the app finds the cluster itself, and every session's keys share one hash slot."""
    project = generate(tmp_path / "app", **ON_THE_CLUSTER)
    passes_its_own_checks_and_suite(project, redis_cluster_url)
