"""Generation and update time, and a new user's path to a green suite.

Run by hand from the repository root, with the root environment:

    uv run python bench/lifecycle.py

It builds the template's releases in a temporary clone (as the update tests do: 0.1.0 and 0.2.0
tagged, this work tree committed on top as the current version), then measures with the `copier`
command, as a user runs it:

* `copier copy --defaults` of each fix, median of `--rounds` (target < 1.5 s);
* `copier update --defaults` of a KV + seed project from the previous release, median of
  `--rounds`, each on a freshly generated and committed project (target < 3 s);
* a new user's path, once: `copier copy`, `uv sync` and `uv run pytest` of the default project,
  every test passing (target < 90 s). It uses uv's cache as it is on this machine; the suite
  uses REDIS_URL when set, else the embedded store.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.releases import build_template_repo, current_version, git  # noqa: E402

BIN = Path(sys.executable).parent
PREVIOUS = "0.2.0"
FIXES = ("kv_seed", "stateful", "client_direct")


# A user's Python caches compiled modules; PYTHONDONTWRITEBYTECODE (set on some CI machines)
# makes every run compile copier, jinja2 and the app again, about 0.7 s a command. `--as-is`
# keeps the environment's setting, to see that cost.
UNCACHED = {"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"}


def run(*command: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in UNCACHED}
    result = subprocess.run(  # noqa: S603 - our own tools (copier, uv, git)
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"`{' '.join(map(str, command))}` failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def copy(template: Path, destination: Path, ref: str, fix: str) -> None:
    command = [BIN / "copier", "copy", "--quiet", "--defaults", "--vcs-ref", ref]
    run(*command, "--data", f"fix={fix}", template, destination, cwd=destination.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set"
    )
    args = parser.parse_args()
    if args.as_is:
        UNCACHED.discard("PYTHONDONTWRITEBYTECODE")
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as scratch:
        work = Path(scratch)
        template = build_template_repo(work / "sessionfix")
        version = current_version()

        for fix in FIXES:
            times = []
            for n in range(args.rounds):
                start = time.perf_counter()
                copy(template, work / f"{fix}-{n}", version, fix)
                times.append(time.perf_counter() - start)
            rows.append((f"`copier copy`, {fix}", statistics.median(times), "< 1.5 s"))

        updates = []
        for n in range(args.rounds):
            project = work / f"update-{n}"
            copy(template, project, PREVIOUS, "kv_seed")
            git("init", "--quiet", cwd=project)
            git("add", "-A", cwd=project)
            git("commit", "--quiet", "-m", "Generated", cwd=project)
            start = time.perf_counter()
            run(BIN / "copier", "update", "--quiet", "--defaults", cwd=project)
            updates.append(time.perf_counter() - start)
        rows.append(
            (f"`copier update` {PREVIOUS} → {version}", statistics.median(updates), "< 3 s")
        )

        project = work / "new-user"
        start = time.perf_counter()
        copy(template, project, version, "kv_seed")
        run(BIN / "uv", "sync", "--quiet", cwd=project)
        output = run(BIN / "uv", "run", "pytest", "-q", cwd=project)
        path = time.perf_counter() - start
        summary = output.strip().splitlines()[-1]
        if " passed" not in summary or "failed" in summary or "skipped" in summary:
            sys.exit(f"the generated suite is not green: {summary}")
        rows.append((f"copy → uv sync → green suite ({summary})", path, "< 90 s"))

    caching = (
        "off"
        if "PYTHONDONTWRITEBYTECODE" not in UNCACHED and os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "on"
    )
    print(
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"bytecode caching {caching}\n"
    )
    print("| step | seconds | target |\n| --- | ---: | --- |")
    for step, seconds, target in rows:
        print(f"| {step} | {seconds:.2f} | {target} |")


if __name__ == "__main__":
    main()
