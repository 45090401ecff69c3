"""The template's own layout: each fix is a place, and Jinja stays a few lines per file."""

import re
from pathlib import Path

import pytest

from .conftest import generate
from .releases import ROOT

TEMPLATE = ROOT / "template"
STATEMENT = re.compile(r"\{%")
FIX_CONDITION = re.compile(r"\bfix\s*(==|!=|in\b|not in\b)")
MAX_STATEMENTS = 12
MAX_FIX_PATH_PARTS = 12
FIXES = ("kv_seed", "stateful", "client_direct")
# A file or folder named in backticks: `src/<package>/routes/deps.py`, `sessions/`, `store.py`.
NAMED_PATH = re.compile(r"`([\w<>./-]+(?:\.py|/))`")
PACKAGE = re.compile(r"<package(?:_name)?>")
# The documentation pages about generated projects, and the fixes each describes.
PROJECT_PAGES = {
    "kv-seed.md": ("kv_seed",),
    "stateful.md": ("stateful",),
    "client-direct.md": ("client_direct",),
    "generated-project.md": FIXES,
    "deploy.md": FIXES,
    "updating.md": FIXES,
}


def template_files() -> list[Path]:
    return sorted(path for path in TEMPLATE.rglob("*") if path.is_file())


def statements(path: Path) -> int:
    """Every `{% ... %}` tag, `else` and `endif` included."""
    return len(STATEMENT.findall(path.read_text()))


def test_no_template_file_holds_more_than_a_few_jinja_statements() -> None:
    crowded = {
        str(path.relative_to(TEMPLATE)): count
        for path in template_files()
        if (count := statements(path)) > MAX_STATEMENTS
    }
    assert not crowded, crowded


def test_fix_conditions_sit_on_a_dozen_path_parts_at_most() -> None:
    parts = {
        part
        for path in template_files()
        for part in path.relative_to(TEMPLATE).parts
        if FIX_CONDITION.search(part)
    }
    assert len(parts) <= MAX_FIX_PATH_PARTS, sorted(parts)


def test_each_fix_is_one_folder_of_the_package_and_one_of_the_tests() -> None:
    for fix in ("kv_seed", "stateful", "client_direct"):
        package = TEMPLATE / "src" / f"{{% if fix == '{fix}' %}}{{{{package_name}}}}{{% endif %}}"
        tests = TEMPLATE / f"{{% if fix == '{fix}' %}}tests{{% endif %}}"
        assert (package / "routes" / "deps.py").exists() or (
            package / "routes" / "deps.py.jinja"
        ).exists(), fix
        assert (package / "app.py.jinja").is_file(), fix
        assert any(tests.glob("conftest.py*")), fix


def test_the_message_after_copy_and_every_readme_name_the_port_option() -> None:
    assert "--port" in (ROOT / "copier.yml").read_text().split("_message_after_update")[0]
    for readme in TEMPLATE.glob("*README.md*"):
        assert "`--port 8080`" in readme.read_text(), readme.name


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per fix, with every optional file its answers can bring."""
    backend = {"kv_seed": "upstash"}
    return {
        fix: generate(
            tmp_path_factory.mktemp(fix) / "app", fix=fix, store_backend=backend.get(fix, "redis")
        )
        for fix in FIXES
    }


def names_a_file_of(project: Path, named: str) -> bool:
    """`src/...` is a path from the project's root; a shorter name is the end of some path in it
    (`routes/deps.py`, `store.py`)."""
    named = PACKAGE.sub("session_app", named).rstrip("/")
    if named.startswith("src/"):
        return (project / named).exists()
    return any(path.as_posix().endswith(f"/{named}") for path in project.rglob("*"))


def test_every_readme_names_files_its_project_has(rendered: dict[str, Path]) -> None:
    missing = {
        fix: sorted(
            named
            for named in set(NAMED_PATH.findall((project / "README.md").read_text()))
            if not names_a_file_of(project, named)
        )
        for fix, project in rendered.items()
    }
    assert not any(missing.values()), missing


def test_every_docs_page_names_files_a_project_has(rendered: dict[str, Path]) -> None:
    missing = {}
    for page, fixes in PROJECT_PAGES.items():
        missing[page] = sorted(
            named
            for named in set(NAMED_PATH.findall((ROOT / "docs" / page).read_text()))
            # A page may also name this repository's own files (`bench/`, `tests/test_deploy.py`).
            if not (ROOT / named).exists()
            and not any(names_a_file_of(rendered[fix], named) for fix in fixes)
        )
    assert not any(missing.values()), missing
