"""`sessionfix scan`: find, in an existing codebase, the state that breaks on several instances."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from .javascript import EXTENSIONS, scan_javascript
from .model import FIX_ADVICE, RULES, Finding, Rule
from .python import scan_python

__all__ = ["FIX_ADVICE", "RULES", "Finding", "Rule", "ScanResult", "scan"]

# Installed and vendored dependencies, generated and cached files: not the code under review.
SKIPPED_DIRECTORIES = {
    ".git", ".hg", ".svn", ".venv", "node_modules", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".next", ".nuxt", ".vercel", ".turbo",
    "site-packages", ".output", "vendor", "_vendor",
}  # fmt: skip
# Names that are build output beside a project's manifest, but may be source anywhere else
# (a `build` package, an `env` settings module).
BUILD_OUTPUTS = {"build", "dist", "coverage"}
MANIFESTS = ("package.json", "pyproject.toml", "setup.py", "setup.cfg")
SOURCE_SUFFIXES = (".py", *EXTENSIONS)


def skipped(name: str, beside: set[str]) -> bool:
    """Whether a folder called `name`, among the files `beside` it, is not the code under
    review. Told from the listings the walk has anyway: no file is looked up on its own."""
    if name in SKIPPED_DIRECTORIES:
        return True
    return name in BUILD_OUTPUTS and not beside.isdisjoint(MANIFESTS)


def environment(names: list[str], subdirectories: list[str]) -> bool:
    """A virtual environment or conda environment, whatever its name (`venv`, `env`, `.env`)."""
    return "pyvenv.cfg" in names or "conda-meta" in subdirectories


@dataclass
class ScanResult:
    root: Path
    findings: list[Finding]
    python_files: int
    javascript_files: int
    errors: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.python_files + self.javascript_files


def source_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = []
    for directory, subdirectories, names in os.walk(root):
        if directory != str(root) and environment(names, subdirectories):
            subdirectories[:] = []
            continue
        beside = set(names)
        subdirectories[:] = sorted(d for d in subdirectories if not skipped(d, beside))
        base = Path(directory)
        found += [base / n for n in sorted(names) if n.endswith(SOURCE_SUFFIXES)]
    # Type declarations hold no state; minified bundles are vendored, not the code under review.
    return [path for path in found if not path.name.endswith((".d.ts", ".min.js"))]


def scan(root: Path) -> ScanResult:
    """Every finding under `root` (a directory or one file), paths relative to it."""
    base = root.parent if root.is_file() else root
    python: list[tuple[str, bytes]] = []
    javascript: list[tuple[str, bytes]] = []
    errors = []
    for path in source_files(root):
        try:
            source = path.read_bytes()
        except OSError as error:
            errors.append(f"{path}: not read ({error.strerror})")
            continue
        relative = path.relative_to(base).as_posix()
        (python if path.suffix == ".py" else javascript).append((relative, source))
    python_findings, python_errors = scan_python(python)
    javascript_findings, javascript_errors = scan_javascript(javascript)
    findings = sorted(python_findings + javascript_findings)
    errors += python_errors + javascript_errors
    return ScanResult(root, findings, len(python), len(javascript), errors)
