"""The template's releases, read from CHANGELOG.md (the one place that maps versions to commits),
and a throw-away clone of this repository where each is a git tag, as users see them.

The clone also holds the work tree being tested, uncommitted changes included, committed on top
and tagged with the version in pyproject.toml: a plain `copier update` goes to it.
"""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\]", re.MULTILINE)
COMMIT = re.compile(r"^Commit `(?P<sha>[0-9a-f]{40})`", re.MULTILINE)


def released() -> dict[str, str]:
    """Every released version and its commit, in the changelog's order (newest first)."""
    text = (ROOT / "CHANGELOG.md").read_text()
    starts = list(SECTION.finditer(text))
    releases: dict[str, str] = {}
    for start, end in zip(starts, [*starts[1:], None], strict=True):
        body = text[start.end() : end.start() if end else len(text)]
        commit = COMMIT.search(body)
        if commit:
            releases[start["version"]] = commit["sha"]
    return releases


def current_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"`git {' '.join(args)}` failed:\n{result.stderr}"
    return result.stdout


def work_tree_files() -> list[str]:
    """The files `git add -A` would commit here: tracked and new, minus ignored and deleted."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def build_template_repo(destination: Path) -> Path:
    """A clone with every released version tagged, and this work tree as the current version."""
    git("clone", "--quiet", "--no-tags", str(ROOT), str(destination), cwd=ROOT.parent)
    for version, sha in released().items():
        git("tag", version, sha, cwd=destination)
    for name in git("ls-files", "-z", cwd=destination).split("\0"):
        if name:
            (destination / name).unlink()
    for name in work_tree_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git("add", "-A", cwd=destination)
    git("commit", "--quiet", "--allow-empty", "-m", "The work tree under test", cwd=destination)
    git("tag", current_version(), cwd=destination)
    return destination
