"""The `sessionfix` command as a whole: its version, and help that answers at once."""

import subprocess
import sys
import tomllib

import pytest

from .conftest import ROOT

# What `sessionfix` runs, plus a report of the heavy modules it loaded on the way.
LOADED_HEAVY_MODULES = """
import sys
from sessionfix.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("copier", "questionary", "prompt_toolkit", "httpx")
print("loaded:", sorted(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


def test_version_prints_the_package_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    result = subprocess.run(
        [sys.executable, "-m", "sessionfix", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"sessionfix {project['version']}"


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["new", "--help"], ["scan", "--help"], ["probe", "--help"]],
)
def test_help_and_version_do_not_load_copier_or_the_prompts(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOADED_HEAVY_MODULES, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.startswith(("usage: sessionfix", "sessionfix ")), result.stderr
    assert result.stderr.strip().splitlines()[-1] == "loaded: []"
