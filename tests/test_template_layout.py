"""The template's own layout: each fix is a place, and Jinja stays a few lines per file."""

import re
from pathlib import Path

from .releases import ROOT

TEMPLATE = ROOT / "template"
STATEMENT = re.compile(r"\{%")
FIX_CONDITION = re.compile(r"\bfix\s*(==|!=|in\b|not in\b)")
MAX_STATEMENTS = 12
MAX_FIX_PATH_PARTS = 12


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
