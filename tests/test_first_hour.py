"""A new user's first hour with the repository: the quickstart, then the template from a clone."""

import socket
import subprocess
import sys
import warnings
from pathlib import Path

import copier
import yaml

from .conftest import DEFAULTS, ROOT
from .releases import build_template_repo, current_version


def test_a_busy_port_is_one_line_naming_port_before_anything_starts(tmp_path: Path) -> None:
    destination = tmp_path / "demo-app"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "tasks.py", "demo", str(destination), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"port {port} is in use" in message and "--port" in message
    # Nothing was generated, installed or started.
    assert not destination.exists()
    assert "==>" not in result.stdout


def test_copier_copy_without_a_ref_takes_the_newest_release(tmp_path: Path) -> None:
    """What the README tells users to run: a plain `copier copy` of a clone with its tags."""
    template = build_template_repo(tmp_path / "sessionfix")
    newest = current_version()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(str(template), tmp_path / "app", data=DEFAULTS, defaults=True, quiet=True)
    answers = yaml.safe_load((tmp_path / "app" / ".copier-answers.yml").read_text())
    assert answers["_commit"] == newest


def test_the_readme_tells_how_to_reach_uv_and_copier_after_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_text()
    use = readme[readme.index("## Use the template") :]
    assert ". .venv/bin/activate" in use
    assert "copier copy path/to/sessionfix myapp" in use  # no --vcs-ref needed
    assert "git init" in use  # update and pre-commit need a repository


def test_the_message_after_copy_says_to_make_a_git_repository(tmp_path: Path) -> None:
    """`copier update` and the pre-commit hooks need one; the message says so, with the rest."""
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    result = subprocess.run(
        [*command, str(ROOT), str(tmp_path / "voice-bot")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout + result.stderr
    assert "git init && git add -A" in message
    assert "uv run python -m voice_bot cluster" in message and "--port" in message
