"""Where the template is, which version to use, and what its copier.yml offers.

The template location is, in order: `--template`; `SESSIONFIX_TEMPLATE`; the git checkout this
package runs from (an editable install from a clone, with `--vcs-ref HEAD` by default, so a
checkout generates what it contains); else the project's public repository, the `Repository`
URL in the package's metadata, at its newest release tag (Copier's default).
"""

import os
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

CHECKOUT = Path(__file__).resolve().parents[2]
FALLBACK_URL = "https://github.com/sessionfix/sessionfix"


class TemplateError(Exception):
    """The template cannot be read; the message says what to do."""


def public_url() -> str:
    try:
        urls = metadata("sessionfix").get_all("Project-URL") or []
    except PackageNotFoundError:
        return FALLBACK_URL
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return str(url).strip()
    return FALLBACK_URL


@dataclass(frozen=True)
class Source:
    location: str
    vcs_ref: str | None  # None: the newest release tag, as Copier picks it


def default_source(template: str | None, vcs_ref: str | None) -> Source:
    chosen = template or os.environ.get("SESSIONFIX_TEMPLATE")
    if chosen:
        return Source(chosen, vcs_ref)
    if (CHECKOUT / "copier.yml").is_file() and (CHECKOUT / ".git").exists():
        return Source(str(CHECKOUT), vcs_ref or "HEAD")
    return Source(public_url(), vcs_ref)


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise TemplateError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def newest_tag(location: str) -> str:
    """The newest PEP 440 release tag, or HEAD without one: the version Copier copies."""
    tags = []
    for line in git("ls-remote", "--tags", "--refs", location).splitlines():
        name = line.split("refs/tags/", 1)[-1]
        try:
            parsed = Version(name)
        except InvalidVersion:
            continue
        if not parsed.is_prerelease:
            tags.append((parsed, name))
    return max(tags)[1] if tags else "HEAD"


def read_config(source: Source) -> dict[str, Any]:
    """The template's copier.yml, at the version Copier will copy."""
    local = Path(source.location).expanduser()
    if local.is_dir():
        ref = source.vcs_ref
        if ref is None and (local / ".git").exists():
            ref = newest_tag(str(local.resolve()))
        if ref in {None, "HEAD"}:
            # Copier copies a local checkout's HEAD with its uncommitted changes.
            text = (local / "copier.yml").read_text()
        else:
            text = git("show", f"{ref}:copier.yml", cwd=local)
    else:
        ref = source.vcs_ref or newest_tag(source.location)
        with tempfile.TemporaryDirectory(prefix="sessionfix-") as clone:
            branch = [] if ref == "HEAD" else ["--branch", ref]
            git("clone", "--quiet", "--depth", "1", *branch, source.location, clone)
            text = (Path(clone) / "copier.yml").read_text()
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise TemplateError(f"{source.location} has no readable copier.yml")
    return config


def offered_fixes(config: dict[str, Any]) -> list[str]:
    """The `fix` values this template version offers, in its order."""
    choices = config.get("fix", {}).get("choices")
    if isinstance(choices, dict):
        return [str(value) for value in choices.values()]
    if isinstance(choices, list):
        return [str(c[1] if isinstance(c, list | tuple) else c) for c in choices]
    raise TemplateError("the template's copier.yml has no `fix` question with choices")
