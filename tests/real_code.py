"""The scanner's real-code corpus: apps taken from pinned package archives, fetched on use.

`tests/scan_corpus/real/cases.toml` lists each case: the registry (`pypi` or `npm`), the package,
its exact version, the kind of archive (`wheel`, `sdist` or `npm`), the archive's sha256, the
folder inside the archive the app sits in (`root`), the files or folders under it that make up
the app (`paths`; `"."` for every file under `root`), the archive's licence file and the
licence the package declares, and the findings expected (`"path:line rule"`, paths relative to
`root`) or `"clean"`.

Each archive is downloaded once, with the registry's own client (`python -m pip download` from
this environment, `npm pack`), into a cache folder (`$SESSIONFIX_SCAN_CORPUS_CACHE`, by default
`~/.cache/sessionfix-scan-corpus`), and its sha256 checked before anything is read from it. A
case's files and the archive's licence file (as `LICENSE`) are extracted into a folder of their
own, which is what the scanner is run on. Nothing from these archives is kept in the repository.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "scan_corpus" / "real" / "cases.toml"
KINDS = {"pypi": {"wheel", "sdist"}, "npm": {"npm"}}


class FetchError(RuntimeError):
    """An archive could not be downloaded, or is not the one pinned."""


@dataclass(frozen=True)
class Case:
    name: str  # `broken/...` or `negatives/...`
    registry: str
    package: str
    version: str
    kind: str
    sha256: str
    licence: str
    licence_file: str
    root: str
    paths: tuple[str, ...]
    expected: tuple[tuple[str, int, str], ...]  # (path, line, rule); empty when clean

    @property
    def archive(self) -> str:
        return f"{self.registry} {self.package}=={self.version} ({self.kind})"


def cases(path: Path = CASES) -> list[Case]:
    data = tomllib.loads(path.read_text())
    found = []
    for entry in data["case"]:
        expected = entry["expected"]
        if expected == "clean":
            parsed: tuple[tuple[str, int, str], ...] = ()
        else:
            parsed = tuple(parse_finding(text) for text in expected)
        case = Case(
            name=entry["name"],
            registry=entry["registry"],
            package=entry["package"],
            version=entry["version"],
            kind=entry["kind"],
            sha256=entry["sha256"],
            licence=entry["licence"],
            licence_file=entry["licence_file"],
            root=entry["root"].rstrip("/"),
            paths=tuple(entry["paths"]),
            expected=parsed,
        )
        if case.kind not in KINDS.get(case.registry, set()):
            raise ValueError(f"{case.name}: no {case.kind!r} archives on {case.registry!r}")
        if case.name.startswith("negatives/") != (not case.expected):
            raise ValueError(f"{case.name}: cases in negatives/, and only they, are clean")
        found.append(case)
    return found


def parse_finding(text: str) -> tuple[str, int, str]:
    place, _, rule = text.partition(" ")
    path, _, line = place.rpartition(":")
    return path, int(line), rule


def cache_dir() -> Path:
    if configured := os.environ.get("SESSIONFIX_SCAN_CORPUS_CACHE"):
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sessionfix-scan-corpus"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def download_command(case: Case, destination: Path) -> list[str]:
    if case.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FetchError(
                f"{case.name}: `npm` is needed to fetch {case.archive} "
                "(Debian/Ubuntu: apt-get install npm)"
            )
        spec = f"{case.package}@{case.version}"
        return [npm, "pack", spec, "--pack-destination", str(destination), "--silent"]
    # The registry's archive of this very release: no dependency, no other kind of file.
    only = ["--only-binary", ":all:"] if case.kind == "wheel" else ["--no-binary", case.package]
    spec = f"{case.package}=={case.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *only, spec]
    return [*command, "--dest", str(destination), "--quiet", "--disable-pip-version-check"]


@contextmanager
def cache_lock() -> Iterator[None]:
    """One process at a time fills the cache: pytest-xdist's workers ask for the same cases at
    once, and one replacing a folder the other reads would fail it."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def archive(case: Case) -> Path:
    """The case's archive in the cache, downloaded first if needed, its sha256 checked."""
    with cache_lock():
        return _archive(case)


def _archive(case: Case) -> Path:
    folder = cache_dir() / "archives" / case.sha256[:16]
    kept = [p for p in folder.glob("*") if p.is_file()] if folder.is_dir() else []
    if kept and sha256(kept[0]) == case.sha256:
        return kept[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        target = Path(scratch) / "archive"
        target.mkdir()
        try:
            result = subprocess.run(
                download_command(case, target), capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise FetchError(f"{case.name}: downloading {case.archive} failed: {error}") from error
        files = [p for p in target.iterdir() if p.is_file()]
        if result.returncode != 0 or len(files) != 1:
            raise FetchError(
                f"{case.name}: downloading {case.archive} failed "
                f"(exit {result.returncode}, {len(files)} file(s)):\n"
                f"{result.stdout}{result.stderr}".rstrip()
            )
        got = sha256(files[0])
        if got != case.sha256:
            raise FetchError(
                f"{case.name}: {case.archive} has sha256 {got}, not the pinned {case.sha256}"
            )
        shutil.rmtree(folder, ignore_errors=True)
        target.rename(folder)
    return folder / files[0].name


def members(path: Path) -> dict[str, bytes]:
    """Every regular file of a wheel, sdist or npm tarball, by its path in the archive."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return {
                info.filename: wheel.read(info) for info in wheel.infolist() if not info.is_dir()
            }
    found = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar.getmembers():
            stream = tar.extractfile(info) if info.isfile() else None
            if stream is not None:
                found[info.name] = stream.read()
    return found


def selected(case: Case, files: dict[str, bytes]) -> dict[str, bytes]:
    """The case's files, by their path under its root."""
    chosen = {}
    prefix = f"{case.root}/" if case.root else ""
    for name, data in files.items():
        if not name.startswith(prefix) or ".." in PurePosixPath(name).parts:
            continue
        text = name.removeprefix(prefix)
        if any(p == "." or text == p or text.startswith(p.rstrip("/") + "/") for p in case.paths):
            chosen[text] = data
    missing = [
        p
        for p in case.paths
        if not any(p == "." or c == p or c.startswith(p + "/") for c in chosen)
    ]
    if not chosen:
        missing = list(case.paths)
    if missing:
        raise FetchError(f"{case.name}: {case.archive} has nothing at {missing} under {case.root}")
    return chosen


def app(case: Case) -> Path:
    """The case's folder, with its files and the archive's licence (`LICENSE`) in it."""
    folder = cache_dir() / "apps" / case.sha256[:16] / case.name
    done = folder / ".complete"
    if done.is_file() and done.read_text() == repr(case):
        return folder
    with cache_lock():
        # Another process may have filled it while this one waited.
        if done.is_file() and done.read_text() == repr(case):
            return folder
        return _extract(case, folder, done)


def _extract(case: Case, folder: Path, done: Path) -> Path:
    files = members(_archive(case))
    chosen = selected(case, files)
    if case.licence_file not in files:
        raise FetchError(f"{case.name}: {case.archive} has no {case.licence_file}")
    shutil.rmtree(folder, ignore_errors=True)
    for name, data in {**chosen, "LICENSE": files[case.licence_file]}.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    done.write_text(repr(case))
    return folder


def apps() -> dict[str, Path]:
    """Every case's folder, by case name (`broken/...`, `negatives/...`), fetched if needed."""
    return {case.name: app(case) for case in cases()}
