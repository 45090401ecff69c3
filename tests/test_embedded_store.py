"""A new user runs the generated suite with no Redis at all: it must pass on the embedded store."""

from pathlib import Path

import pytest

from .conftest import assert_all_passed, generate, uv


@pytest.mark.matrix
def test_the_default_project_passes_on_the_embedded_store(tmp_path: Path) -> None:
    project = generate(tmp_path / "app")
    uv(project, "sync")
    output = uv(project, "run", "pytest")
    assert "session store: the embedded development store" in output
    assert_all_passed(output)
