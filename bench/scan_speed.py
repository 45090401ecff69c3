"""`sessionfix scan` speed on a large real codebase, and its precision and recall on the corpus.

Run by hand from the repository root, with the root environment:

    uv run python bench/scan_speed.py pypi:django
    uv run python bench/scan_speed.py /tmp/scan-bench/django-5.2.tar.gz   # an archive at hand

`pypi:NAME` downloads the package's sdist with pip into a temporary directory. The archive (an
sdist or a wheel) or directory is unpacked into a temporary directory and scanned whole,
`--rounds` times; the figures are the median round. `ast.parse` of the same files is timed in
every round too, as the floor any `ast`-based scanner stands on: on a busy machine the ratio
moves much less than the absolute figures. Target: at least 800 Python files per second.
Precision and recall on tests/scan_corpus come from `scan_accuracy.py`.
"""

import argparse
import ast
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from sessionfix.scan import scan, source_files
from sessionfix.scan.python import scan_python

from scan_accuracy import scores


def download(requirement: str, into: Path) -> Path:
    """The sdist of a PyPI package, downloaded with pip (the package's source tree, tests too)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--no-binary", ":all:", "--dest", str(into), requirement]
    subprocess.run(command, check=True)  # noqa: S603 (pip, with the name given by hand)
    [archive] = into.iterdir()
    return archive


def unpack(archive: Path, into: Path) -> Path:
    if archive.is_dir():
        return archive
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(into)  # noqa: S202 (a registry package chosen by the person running this)
    else:
        with tarfile.open(archive) as bundle:
            bundle.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="pypi:NAME, or an sdist, a wheel, or a directory")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as scratch:
        archive = Path(args.source)
        if args.source.startswith("pypi:"):
            (Path(scratch) / "download").mkdir()
            archive = download(args.source.removeprefix("pypi:"), Path(scratch) / "download")
        root = unpack(archive, Path(scratch) / "tree")
        files = source_files(root)
        python = [
            (p.relative_to(root).as_posix(), p.read_bytes()) for p in files if p.suffix == ".py"
        ]
        size = sum(len(source) for _, source in python)
        whole, python_only, parse_only = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            result = scan(root)
            whole.append(time.perf_counter() - started)
            started = time.perf_counter()
            scan_python(python)
            python_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            for path, source in python:
                with contextlib.suppress(SyntaxError):
                    ast.parse(source, path)
            parse_only.append(time.perf_counter() - started)

    whole_s, python_s = statistics.median(whole), statistics.median(python_only)
    parse_s = statistics.median(parse_only)
    print(
        f"\n{archive.name}: {result.python_files} Python files ({size / 1e6:.1f} MB), "
        f"{result.javascript_files} JavaScript/TypeScript files, "
        f"{len(result.findings)} findings, {len(result.errors)} files not parsed\n"
    )
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| whole scan (read, parse, analyse; Python and JS), median of {args.rounds} | "
        f"{whole_s:.2f} s | |"
    )
    print(f"| Python files per second, whole scan | {result.python_files / whole_s:.0f} | ≥ 800 |")
    print(
        f"| Python analysis alone (sources in memory) | {python_s:.2f} s, "
        f"{len(python) / python_s:.0f} files/s | |"
    )
    print(
        f"| baseline: `ast.parse` alone, same files and rounds | {parse_s:.2f} s, "
        f"{len(python) / parse_s:.0f} files/s | |"
    )
    print(f"| Python analysis / `ast.parse` alone | {python_s / parse_s:.2f} | |")
    for part in scores():
        print(
            f"| precision / recall on the corpus, {part.part} ({len(part.expected)} expected) | "
            f"{part.precision:.0%} / {part.recall:.0%} | |"
        )


if __name__ == "__main__":
    main()
