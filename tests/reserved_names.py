"""Writes includes/reserved-names.jinja: the names a generated package must not take.

A package named like a Python keyword cannot be imported; one named like a standard-library
module, an installed distribution's top-level module or a folder of the generated project
shadows it (or is shadowed), which breaks in confusing places. copier.yml imports the lists
from the written file, so a plain `copier copy` needs no Python of ours and no `--trust`.

    uv run python -m tests.reserved_names      # rewrite the file
    tests/test_questions.py                     # fails when the file is not what this writes

Sources:
- Python's `keyword.kwlist`, `keyword.softkwlist`, `sys.stdlib_module_names` and the modules in
  its standard-library folder (`test`, which the former leaves out), merged with
  the names the file already holds, so the union over the Pythons it was written with stays
  (3.12 added `type` as a soft keyword, 3.12 and 3.13 dropped modules that 3.11 still has);
- the top-level import names of every distribution a generated project installs (its
  dependencies and dependency groups, for every answer combination), resolved by uv for every
  platform and installed for this one, so `pyyaml` counts as `yaml`;
- the generated project's top-level folders (`src`, `tests`, `api`, ...).
"""

import itertools
import keyword
import re
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from pkgutil import iter_modules
from typing import Any

import jinja2
import yaml
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template"
DATA_FILE = ROOT / "includes" / "reserved-names.jinja"
IMPORT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LIST = re.compile(r"set (?P<name>\w+) = \[(?P<items>[^\]]*)\]")
# Dependencies are resolved as PyPI had them on this day, so a new release elsewhere cannot make
# the drift test fail; move it forward when the generated projects' dependencies change.
RESOLVED_AS_OF = "2026-12-02T00:00:00Z"

HEADER = """\
{#- Names a generated package must not take, in the lists that copier.yml imports.
    Written by `uv run python -m tests.reserved_names`; do not edit by hand (its docstring says
    where each list comes from, and tests/test_questions.py fails when this file drifts). -#}
"""


def import_names(names: set[str]) -> list[str]:
    """The names a package name could equal (lower case, starting with a letter), sorted."""
    return sorted(name for name in {name.lower() for name in names} if IMPORT_NAME.match(name))


def written_lists(text: str) -> dict[str, list[str]]:
    return {
        match["name"]: re.findall(r'"([^"]+)"', match["items"]) for match in LIST.finditer(text)
    }


def python_names() -> dict[str, set[str]]:
    # sys.stdlib_module_names leaves out the test suite's modules, but `import test` still finds
    # the standard library's own `test` package first: what the stdlib folder holds counts too.
    folder = sysconfig.get_path("stdlib")
    return {
        "python_keywords": {*keyword.kwlist, *keyword.softkwlist},
        "standard_library": {*sys.stdlib_module_names, *(m.name for m in iter_modules([folder]))},
    }


def answer_combinations(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the single-choice and yes/no answers; multiselects get every choice."""
    fixed: dict[str, Any] = {}
    varied: dict[str, list[Any]] = {}
    for name, spec in config.items():
        if name.startswith("_") or not isinstance(spec, dict):
            continue
        choices = spec.get("choices")
        if spec.get("multiselect") and isinstance(choices, dict):
            fixed[name] = list(choices.values())
        elif isinstance(choices, dict):
            varied[name] = list(choices.values())
        elif spec.get("type") == "bool":
            varied[name] = [True, False]
        else:
            fixed[name] = spec.get("default")
    for values in itertools.product(*varied.values()):
        yield fixed | dict(zip(varied, values, strict=True))


def requirements() -> set[str]:
    """Every requirement of the generated pyproject.toml, over all answer combinations."""
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    loader = jinja2.FileSystemLoader(ROOT)
    environment = jinja2.Environment(loader=loader, autoescape=False)  # noqa: S701 (TOML)
    template = environment.get_template("template/pyproject.toml.jinja")
    found: set[str] = set()
    for answers in answer_combinations(config):
        pyproject = tomllib.loads(template.render(answers))
        project = pyproject.get("project", {})
        found.update(project.get("dependencies", []))
        for group in [*project.get("optional-dependencies", {}).values()]:
            found.update(group)
        for group in pyproject.get("dependency-groups", {}).values():
            found.update(entry for entry in group if isinstance(entry, str))
    return found


def dependency_names() -> set[str]:
    """Top-level import names of what the generated projects install (see the docstring)."""
    uv = find_uv_bin()
    with tempfile.TemporaryDirectory(prefix="reserved-names-") as work:
        wanted = Path(work) / "requirements.in"
        wanted.write_text("\n".join(sorted(requirements())) + "\n")
        resolved = Path(work) / "requirements.txt"
        resolve = [uv, "pip", "compile", "--quiet", "--universal", "--no-header", "--no-annotate"]
        resolve += ["--exclude-newer", RESOLVED_AS_OF]
        python = ["--python-version", f"{sys.version_info.major}.{sys.version_info.minor}"]
        subprocess.run([*resolve, *python, str(wanted), "-o", str(resolved)], check=True)
        site = Path(work) / "site"
        install = [uv, "pip", "install", "--quiet", "--target", str(site), "--no-deps"]
        install += ["--exclude-newer", RESOLVED_AS_OF]
        subprocess.run([*install, "-r", str(resolved)], check=True)
        names = {entry.name.split(".")[0] for entry in site.iterdir()}
        installed = {
            entry.name.split("-")[0].lower().replace("_", "-") for entry in site.glob("*.dist-info")
        }
        pins = [line.split("==")[0].strip() for line in resolved.read_text().splitlines()]
    # A distribution this platform skips (colorama is Windows-only) counts by its own name.
    names |= {pin.replace("-", "_") for pin in pins if pin and pin not in installed}
    return names - {"bin", "include", "share", "lib"}


def project_folders() -> set[str]:
    """The generated project's top-level folders, their names taken out of Jinja conditions."""
    folders = set()
    for entry in TEMPLATE.iterdir():
        if entry.is_dir():
            folders.add(re.sub(r"\{%.*?%\}|\{\{.*?\}\}", "", entry.name))
    return folders


def render(previous: str = "") -> str:
    kept = written_lists(previous)
    lists = {
        name: import_names(names | set(kept.get(name, [])))
        for name, names in python_names().items()
    }
    lists["dependencies"] = import_names(dependency_names())
    lists["project_folders"] = import_names(project_folders())
    body = "".join(f"{{%- set {name} = {wrapped(names)} -%}}\n" for name, names in lists.items())
    every = " + ".join(lists)
    return f"{HEADER}{body}{{%- set reserved_names = {every} -%}}\n"


def wrapped(names: list[str], width: int = 100) -> str:
    lines, line = [], "  "
    for name in names:
        item = f'"{name}", '
        if len(line) + len(item) > width:
            lines.append(line.rstrip())
            line = "  "
        line += item
    lines.append(line.rstrip().rstrip(","))
    return "[\n" + "\n".join(lines) + "\n]"


if __name__ == "__main__":
    existing = DATA_FILE.read_text() if DATA_FILE.exists() else ""
    DATA_FILE.write_text(render(existing))
    print(f"wrote {DATA_FILE.relative_to(ROOT)}")
