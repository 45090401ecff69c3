"""`sessionfix new --setup`: run the post-copy scripts of `hooks/post-copy/` in a new project.

Each script runs with this Python in the project's directory, in name order, with
`SESSIONFIX_UV` naming the uv executable; its first docstring line is its progress label. The
output goes to a log file, whose end is shown when a script fails.
"""

import ast
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uv
from rich.console import Console

from .template import CHECKOUT

SCRIPT_TIMEOUT = 1_500  # seconds; a generated suite takes a few minutes, a hang must end


class SetupError(Exception):
    """The setup cannot start: what is missing, and what to do."""


def hooks_directory() -> Path:
    """In a wheel the scripts are package data; in a checkout, the repository's hooks/."""
    for candidate in (Path(__file__).parent / "hooks", CHECKOUT / "hooks"):
        if (candidate / "post-copy").is_dir():
            return candidate / "post-copy"
    raise SetupError(
        "the post-copy scripts (hooks/post-copy) are not installed with sessionfix; reinstall it, "
        "or set the project up by hand: uv sync && uv run pytest"
    )


def uv_executable() -> str:
    try:
        return uv.find_uv_bin()
    except (FileNotFoundError, OSError) as error:
        raise SetupError(
            f"the uv executable that comes with sessionfix is missing ({error}); reinstall "
            "sessionfix, or install uv and run: uv sync && uv run pytest"
        ) from None


def label(script: Path) -> str:
    docstring = ast.get_docstring(ast.parse(script.read_text())) or script.stem
    return docstring.splitlines()[0].rstrip(".")


def run_setup(project: Path, console: Console) -> bool:
    """Run every post-copy script; False (after saying why) when one fails."""
    scripts = sorted(hooks_directory().glob("*.py"))
    if not scripts:
        raise SetupError(f"{hooks_directory()} holds no post-copy script")
    environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    environment["SESSIONFIX_UV"] = uv_executable()
    handle, name = tempfile.mkstemp(prefix="sessionfix-setup-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(handle, "w") as log:
        for number, script in enumerate(scripts, 1):
            step = f"[{number}/{len(scripts)}] {label(script)}"
            log.write(f"==> {step}\n")
            log.flush()
            started = time.monotonic()
            with console.status(step):
                try:
                    result = subprocess.run(
                        [sys.executable, str(script)],
                        cwd=project,
                        env=environment,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        timeout=SCRIPT_TIMEOUT,
                        check=False,
                    )
                    failed = result.returncode != 0
                except subprocess.TimeoutExpired:
                    failed = True
                    log.write(f"\nstopped after {SCRIPT_TIMEOUT} s\n")
            seconds = time.monotonic() - started
            if failed:
                console.print(f"[red]✗[/red] {step} failed after {seconds:.0f} s")
                log.flush()
                tail = log_path.read_text().splitlines()[-25:]
                console.print("\n".join(tail), markup=False, highlight=False)
                console.print(f"The whole output is in {log_path}")
                return False
            console.print(f"[green]✓[/green] {step} ({seconds:.0f} s)")
    log_path.unlink()
    return True
